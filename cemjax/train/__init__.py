"""Training machinery shared by pretraining and fine-tuning: meshes, state, checkpoints, metrics."""
