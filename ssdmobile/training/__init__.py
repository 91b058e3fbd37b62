"""Training: the data pipeline (data.py), the SSD loss and distillation (loss.py), distributed runs
and resumable checkpoints (checkpoint.py). The loop itself is a recipe a user reads top to bottom
(recipes/qat.py); what quantization-aware training does to the model (fake quantization, ranges,
conversion to int8) is ssdmobile.quant.qat's.
"""
