"""The pretrained encoders: finding one (encoder.py), reading its weights without PyTorch
(weight_files.py) in BERT's form whatever its architecture (architectures.py), and its
tokenizer (tokenization.py)."""
