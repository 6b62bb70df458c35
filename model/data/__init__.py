"""The data pipeline: Megatron indexed datasets (`indexed`), WikiText clean-up (`wikitext`), text to
`.bin`/`.idx` conversion with a Hugging Face `tokenizers` tokenizer (`convert`), and the embedded default
corpus built from the Python standard library's docstrings (`corpus`). No numpy, no MindSpore."""
