"""Small, self-contained experiments that reproduce figures of the tfvq papers (e.g. `toy_modes`, HQA Figure 1)."""
