"""``python -m train.models``: parameters and MMAC per second of audio of every registered model."""

from train.models import model_table

if __name__ == "__main__":
    print(f"{'model':<12} {'role':<8} {'params':>12} {'MMAC/s':>10}")
    for row in model_table():
        print(f"{row['name']:<12} {row['role']:<8} {row['params']:>12,} {row['mmac_per_s']:>10.1f}")
