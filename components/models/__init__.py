"""Model builders (VGG16, ResNet50) and the TFX Trainer/Tuner module (trainer.py)."""
