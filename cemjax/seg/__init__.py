"""Fine-tuned segmentation models: training, inference and benchmark evaluation (docs/method.md §4)."""
