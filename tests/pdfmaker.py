"""Small PDFs generated with PyMuPDF for tests (no licence needed: we write them)."""

from __future__ import annotations

from collections.abc import Sequence

import pymupdf


def make_pdf(pages: Sequence[str], *, title: str = "", fontsize: float = 10) -> bytes:
    """One page per string; text wrapped into a box with real words and lines."""
    doc = pymupdf.open()
    for text in pages:
        page = doc.new_page(width=595, height=842)
        page.insert_textbox(pymupdf.Rect(60, 60, 535, 800), text, fontsize=fontsize)
    if title:
        doc.set_metadata({"title": title})
    data: bytes = doc.tobytes()
    doc.close()
    return data


METHODS_PAPER = [
    "Detecting plant organs in herbarium scans\n\n"
    "Abstract\n"
    "We train a convolutional neural network to detect leaves, flowers and fruits in digitised "
    "herbarium sheets. The model reaches a mean average precision of 0.71 on held-out sheets.\n\n"
    "1 Introduction\n"
    "Natural history collections hold millions of scanned specimens. Annotating organs by hand "
    "is slow, so automatic detection helps botanists study phenology at scale.\n\n"
    "2 Methods\n"
    "We used the Faster R-CNN architecture implemented in PyTorch 1.4. The network was trained "
    "with stochastic gradient descent, a learning rate of 0.0025 and a batch size of 4 for "
    "40 epochs on one NVIDIA Tesla V100 GPU. Images were augmented by horizontal flipping and "
    "random rotation. The dataset of 653 annotated sheets was split into 80% training, 10% "
    "validation and 10% test images.",
    "3 Results\n"
    "Leaves were detected most reliably, with an average precision of 0.82, whereas fruits were "
    "hardest at 0.44. Errors were concentrated on overlapping organs.\n\n"
    "4 Data availability\n"
    "The code is available on GitHub at https://github.com/example/herbarium-detect and the "
    "annotated images are deposited on Zenodo.\n\n"
    "References\n"
    "Ren S, He K, Girshick R, Sun J (2015) Faster R-CNN: towards real-time object detection with "
    "region proposal networks. Advances in Neural Information Processing Systems 28.",
]
