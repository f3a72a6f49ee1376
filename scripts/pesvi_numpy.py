"""Reads a saved PESVI model directory into NumPy (float64) for the probe scripts in this folder.
Not part of the package."""
import json, struct
import numpy as np


def load_model(model):
    """(decoder, pseudo_encoder, x, config): each network a list of (W, b) with W in x inputs,
    out outputs order (rows multiply from the left), x the model's test rows standardized."""
    raw = open(model + "/model.safetensors", "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    tensors = {k: np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], dtype=np.float32)
               .reshape(v["shape"]).astype(np.float64) for k, v in header.items() if k != "__metadata__"}
    config = json.load(open(model + "/config.json"))
    x = (np.load(model + "/test.npy").astype(np.float64) - np.array(config["standardizer"]["means"])) \
        / np.array(config["standardizer"]["stds"])

    def layers(prefix):
        out, i = [], 0
        while f"{prefix}.layers.{i}.weight" in tensors:
            out.append((tensors[f"{prefix}.layers.{i}.weight"], tensors[f"{prefix}.layers.{i}.bias"])); i += 1
        return out

    return layers("decoder"), layers("pseudo_encoder"), x, config


def mlp(layers, v):
    """The network's output for rows v: ReLU between layers, none after the last."""
    for i, (W, b) in enumerate(layers):
        v = v @ W + b
        if i < len(layers) - 1: v = np.maximum(v, 0)
    return v
