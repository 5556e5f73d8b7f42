"""Fine-tuned segmentation models: training, inference and benchmark evaluation (REFERENCE §4)."""
