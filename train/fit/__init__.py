"""Fit: the one training loop for teachers and students (``trainer.fit`` with a task), window
datasets, ``TrainConfig`` and its presets; own-run fine-tuning."""
