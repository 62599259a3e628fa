"""answers.parse on real-looking replies: seed ``Answer:::`` blocks, evidence-first, prose."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa_core.answering.replies import Parsed, parse
from qa_core.models import QuoteCandidate

DATA = Path(__file__).resolve().parent / "data"

# Replies marked (KG) are answers of the seed pipeline to the competency questions about
# publication 24 (fusion-jena/automatic-KG-creation-with-LLM, Apache-2.0), copied verbatim.
STATUS = [
    ("NOT REPORTED", "not_reported"),
    ("not reported", "not_reported"),
    ("**NOT REPORTED**", "not_reported"),
    ("NOT REPORTED\nThe passages describe the data but not the optimizer.", "not_reported"),
    ("Answer:::\nAnswer: NOT REPORTED\n\nAnswer:::", "not_reported"),
    ("NOT REPORTED. The passages only describe the dataset.", "not_reported"),
    ("NOT REPORTED — no optimizer is named in [1] or [2].", "not_reported"),
    ("Not reported: the passages cover the data only.", "not_reported"),
    ("", "not_reported"),
    ("Answer:::\n\nAnswer:::", "not_reported"),
    ("I don't know.", "not_reported"),
    ("I do not know the answer to this question based on the given context.", "not_reported"),
    ("Not mentioned.", "not_reported"),
    # (KG) q4, q17, q20, q8, q15, q13: abstentions that ramble a little
    (
        "The context does not provide information on the specific data augmentation techniques "
        "applied in the deep learning pipeline. Therefore, I cannot provide a helpful answer to "
        "this query. ",
        "not_reported",
    ),
    (
        "The context does not provide information on the regularization methods used to prevent "
        "overfitting in the deep learning pipeline. Therefore, I don't know the answer to this "
        "query. ",
        "not_reported",
    ),
    (
        "The code repository of the deep learning pipeline is not explicitly mentioned in the "
        "provided context. Therefore, I cannot provide the exact location of the code repository. ",
        "not_reported",
    ),
    (
        "The helpful answer is that the optimization technique applied in the deep learning "
        "pipeline is not explicitly mentioned in the provided context. Therefore, it is not "
        "possible to determine which optimization technique was used. %Query ",
        "not_reported",
    ),
    (
        "The helpful answer is that the hyperparameters used in the deep learning model are not "
        "explicitly mentioned in the provided context. Therefore, it is not possible to provide a "
        "specific answer to this query based on the given information. Final ",
        "not_reported",
    ),
    ("The paper does not specify the batch size.", "not_reported"),
    ("No information is provided about the hardware used for training.", "not_reported"),
    ("This cannot be determined from the given context.", "not_reported"),
    ("The learning rate is not stated in the passages.", "not_reported"),
    # answered, including partial answers that mention what is missing
    ("The paper does not mention dropout, but uses L2 regularization [2].", "answered"),
    ("The learning rate is not specified, but the batch size is 32.", "answered"),
    (
        "The context does not mention the optimizer. However, the learning rate was set to 0.01.",
        "answered",
    ),
    ('Dropout is not mentioned; the model uses "L2 weight decay of 0.0005" [3].', "answered"),
    # (KG) q12, q5
    ("The pipeline uses a Convolutional Neural Network (CNN) model.", "answered"),
    (
        "The deep learning pipeline uses the CitySounds2017 dataset, an expert-annotated dataset "
        "of urban sounds collected across Greater London, UK. This dataset was used to train the "
        "CNNs, CityBioNet and CityAnthroNet.",
        "answered",
    ),
    (
        "The model was trained for 40 epochs. The optimizer is not reported. Images were "
        "flipped horizontally.",
        "answered",
    ),
    ("Answer:::\nAnswer: The dataset is X.\n\nAnswer:::", "answered"),
]


@pytest.mark.parametrize(("reply", "status"), STATUS)
def test_status(reply: str, status: str) -> None:
    assert parse(reply).status == status


def test_custom_sentinel() -> None:
    assert parse("N/A", sentinel="N/A").status == "not_reported"
    assert parse("N/A").status == "answered"


BODY = [
    ("Answer:::\nAnswer: The dataset is X.\n\nAnswer:::", "The dataset is X."),
    ("Answer:::\nAnswer: The dataset is X.\nAnswer:::\n", "The dataset is X."),
    ("Answer:::\nHelpful Answer: Answer: SGD with momentum.\n\nAnswer:::", "SGD with momentum."),
    ("Answer: The dataset is X.\n\nAnswer:::", "The dataset is X."),  # opening marker dropped
    ("Answer:::\nThe dataset is X.", "The dataset is X."),  # closing marker dropped
    ("Helpful Answer:\nThe model is a CNN.", "The model is a CNN."),
    ("  The model is a CNN [1].  ", "The model is a CNN [1]."),
    ("**Answer:** ResNet-50 [2].", "ResNet-50 [2]."),
]


@pytest.mark.parametrize(("reply", "body"), BODY)
def test_body(reply: str, body: str) -> None:
    assert parse(reply).body == body


def test_seed_example_reply_is_the_text_after_helpful_answer() -> None:
    prompt_and_reply = (DATA / "seed_example.txt").read_text(encoding="utf-8")
    reply = prompt_and_reply.rsplit("Helpful Answer:", 1)[1]
    parsed = parse(reply)
    assert parsed.body.startswith("The text mentions one dataset explicitly - ImageNet.")
    assert parsed.status == "answered"  # "not given in the provided context" comes last
    assert parsed.citations == () and parsed.quotes == ()


QUOTES = [
    (
        'The rate was "a learning rate of 0.001 for all runs" [2].',
        [("a learning rate of 0.001 for all runs", 2)],
    ),
    (
        "Curly: “trained for forty epochs on one GPU” [3]",
        [("trained for forty epochs on one GPU", 3)],
    ),
    (
        'Comma first: "trained for forty epochs on one GPU", [4]',
        [("trained for forty epochs on one GPU", 4)],
    ),
    (
        'Full stop first: "trained for forty epochs on one GPU". [5]',
        [("trained for forty epochs on one GPU", 5)],
    ),
    (
        'Several: "trained for forty epochs on one GPU" [1, 3]',
        [("trained for forty epochs on one GPU", 1)],
    ),
    (
        'Adjacent: "trained for forty epochs on one GPU" [6][2]',
        [("trained for forty epochs on one GPU", 6)],
    ),
    (
        'Before: [2] "trained for forty epochs on one GPU" was the setup.',
        [("trained for forty epochs on one GPU", 2)],
    ),
    (
        'Later: "trained for forty epochs on one GPU" as stated in [7].',
        [("trained for forty epochs on one GPU", 7)],
    ),
    (
        'Uncited: "trained for forty epochs on one GPU". Other sentence [1].',
        [("trained for forty epochs on one GPU", None)],
    ),
    ('Short ones are not quotes: "CNN" [1] and "SGD" [2].', []),
    (
        'Ellipses go: "...trained for forty epochs on one GPU…" [2]',
        [("trained for forty epochs on one GPU", 2)],
    ),
    (
        'Two: "the first quoted span here" [1] and "the second quoted span" [2].',
        [("the first quoted span here", 1), ("the second quoted span", 2)],
    ),
    (
        'Mixed marks: “trained for forty epochs on one GPU" [8]',
        [("trained for forty epochs on one GPU", 8)],
    ),
    (
        'A stray 12" inch\n\nmark "does not swallow paragraphs" [1]',
        [("does not swallow paragraphs", 1)],
    ),
]


@pytest.mark.parametrize(("reply", "quotes"), QUOTES)
def test_quotes(reply: str, quotes: list[tuple[str, int | None]]) -> None:
    assert parse(reply).quotes == tuple(QuoteCandidate(t, n) for t, n in quotes)


CITATIONS = [
    ("Uses SGD [2] and Adam [1], again SGD [2].", (2, 1)),
    ("See [1, 3] and [4][2].", (1, 3, 4, 2)),
    ("A range [2-4].", (2, 3, 4)),
    ('The paper\'s own refs stay out: "as shown in [12], the model converges" [3].', (3,)),
    ("Intervals are not citations: [0.5, 1.0].", ()),
    ("No citations at all.", ()),
]


@pytest.mark.parametrize(("reply", "citations"), CITATIONS)
def test_citations(reply: str, citations: tuple[int, ...]) -> None:
    assert parse(reply).citations == citations


def test_evidence_first_reply() -> None:
    reply = (
        "The model was trained with SGD at a learning rate of 0.0025 [1], using "
        '"a batch size of 4 for 40 epochs" [1]. The data were split "into 80% training, '
        '10% validation and 10% test images" [2]. Dropout is not reported.'
    )
    parsed = parse(reply)
    assert parsed == Parsed(
        body=reply,
        status="answered",
        citations=(1, 2),
        quotes=(
            QuoteCandidate("a batch size of 4 for 40 epochs", 1),
            QuoteCandidate("into 80% training, 10% validation and 10% test images", 2),
        ),
    )
