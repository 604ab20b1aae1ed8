//! valar report: PNG figures and a Markdown summary of a prepared dataset or a training run.
