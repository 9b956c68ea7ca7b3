"""Lightning callbacks and plugins used by the training configs."""
