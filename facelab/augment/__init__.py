"""Synthetic data: a StyleGAN2-ADA generator trained on the source faceset, sampled into it."""
