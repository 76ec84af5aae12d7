"""Ensemble: the architectures a run trained, served as one model (the mean of their
probabilities), a candidate beside them."""
