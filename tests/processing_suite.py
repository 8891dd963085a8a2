"""transformers' `ProcessorTesterMixin` applied to NextGPTProcessor. Not collected here: `test_transformers_suites.py`
runs it beside the installed transformers version's own `tests/test_processing_common.py`, fetched at test time."""

import unittest

from test_processing_common import ProcessorTesterMixin  # noqa: I001 (beside this file, from the sdist)
from transformers import AutoTokenizer

from default_model import SMOLLM2_GGUF, smollm2_folder
from processing_nextgpt import NextGPTProcessor, imagebind_image_processor
from test_transformers_suites import INAPPLICABLE

class NextGPTProcessorTest(ProcessorTesterMixin, unittest.TestCase):
    processor_class = NextGPTProcessor

    @classmethod
    def _setup_image_processor(cls):
        return imagebind_image_processor()

    @classmethod
    def _setup_tokenizer(cls):
        return AutoTokenizer.from_pretrained(smollm2_folder(), gguf_file=SMOLLM2_GGUF)


for name, reason in INAPPLICABLE.items():
    setattr(NextGPTProcessorTest, name, unittest.skip(reason)(getattr(NextGPTProcessorTest, name)))
