"""footfall device side: torch-free streaming runtime."""
