"""A family of one's own, outside tfvq: a folder with a model (`tiny_vq`) and its presets (`presets`).

The tests register it with `tfvq.zoo.register_presets("tiny_family.presets")` and run the zoo's contract harness
on it (tests/models/test_contract.py), as a family folder of `tfvq.models` is registered and tested.
"""
