"""VQA accuracy as an `evaluate` metric, loaded offline by path: `evaluate.load("metrics/vqa_accuracy.py")`.

Answers are normalised as the VQA evaluation does (case, punctuation, articles, number words, common contractions).
With one reference per question the score is exact match; with several human answers (VQAv2 has ten) an answer
scores min(#humans who gave it / 3, 1)."""

import re

import datasets
import evaluate

NUMBER_WORDS = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}
ARTICLES = {"a", "an", "the"}
CONTRACTIONS = {"dont": "don't", "doesnt": "doesn't", "isnt": "isn't", "arent": "aren't", "cant": "can't",
                "wont": "won't", "whats": "what's", "thats": "that's", "its": "it's", "im": "i'm"}
# A period is punctuation unless it is a decimal point (digits on both sides).
PUNCTUATION = re.compile(r"\.(?!\d)|(?<!\d)\.|[;/\[\]\"{}()=+\\_\-><@`,?!*#%^&$~:|]")


def normalize_answer(answer: str) -> str:
    text = PUNCTUATION.sub(" ", answer.lower().replace("\n", " ").replace("\t", " "))
    words = [NUMBER_WORDS.get(word, word) for word in text.replace("'", "").split() if word not in ARTICLES]
    return " ".join(CONTRACTIONS.get(word, word) for word in words)


class VqaAccuracy(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=__doc__,
            citation="Antol et al., VQA: Visual Question Answering, ICCV 2015",
            inputs_description="predictions: list of answers; references: list of answers or of lists of answers",
            features=[
                datasets.Features({"predictions": datasets.Value("string"),
                                   "references": datasets.Sequence(datasets.Value("string"))}),
                datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
            ],
        )

    def _compute(self, predictions: list[str], references: list) -> dict:
        scores = []
        for prediction, answers in zip(predictions, references):
            answers = [answers] if isinstance(answers, str) else answers
            matches = sum(normalize_answer(prediction) == normalize_answer(answer) for answer in answers)
            scores.append(float(matches > 0) if len(answers) == 1 else min(matches / 3, 1.0))
        return {"accuracy": sum(scores) / len(scores) if scores else 0.0}
