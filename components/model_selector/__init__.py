"""ModelSelector: the winner among evaluated, blessed candidate models."""
