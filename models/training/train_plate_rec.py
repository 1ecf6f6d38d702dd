"""Train the plate recogniser (``models/plate_rec.py``) on synthetic plates; export ONNX.

    python -m citywatch.models.training.train_plate_rec --data-dir DIR --fonts-dir DIR --out DIR

Needs PyTorch (a GPU makes it a few minutes; not a citywatch dependency). ``--data-dir``
holds OpenCV's sample photos (``/usr/share/doc/opencv-doc/examples/data``: the plate
benchmark's backgrounds are left out) and ``--fonts-dir`` the DejaVu fonts. Writes
``plate_rec.onnx`` and ``metrics.json`` (validation exact-match by plate width, on
the training fonts and on a font never trained on).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import time
from pathlib import Path

import numpy as np

from citywatch.models.plate_rec import ALPHABET, INPUT_H, INPUT_W, ctc_best_path
from citywatch.models.training.plate_data import make_batch, training_backgrounds

TRAIN_FONTS = (
    ("DejaVuSans-Bold.ttf", 0.55),
    ("DejaVuSansCondensed-Bold.ttf", 0.25),
    ("DejaVuSansMono-Bold.ttf", 0.2),
)
UNSEEN_FONT = "DejaVuSerifCondensed-Bold.ttf"
BINS = ((30, 40), (40, 60), (60, 80), (80, 120), (120, 230))
_BACKGROUNDS: list[np.ndarray] = []
log = logging.getLogger("train_plate_rec")


def _init(data_dir: str) -> None:
    import cv2

    cv2.setNumThreads(1)  # one process per core: OpenCV's own threads only oversubscribe
    _BACKGROUNDS.extend(training_backgrounds(Path(data_dir)))


def _job(
    args: tuple[int, int, list[tuple[str, float]], tuple[int, int]],
) -> tuple[np.ndarray, list[str], np.ndarray]:
    seed, n, fonts, widths = args
    return make_batch(seed, n, _BACKGROUNDS, [(Path(p), w) for p, w in fonts], widths)


def generate(
    pool: mp.pool.Pool,
    seed: int,
    n: int,
    fonts: list[tuple[str, float]],
    widths: tuple[int, int] = (30, 230),
    chunk: int = 1000,
    deadline: float | None = None,
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """``n`` examples (fewer if ``deadline``, a time.time(), passes first)."""
    jobs = [
        (seed * 100_000 + i, min(chunk, n - i * chunk), fonts, widths)
        for i in range((n + chunk - 1) // chunk)
    ]
    parts = []
    for part in pool.imap(_job, jobs):
        parts.append(part)
        if deadline is not None and time.time() > deadline:
            break
    return (
        np.concatenate([p[0] for p in parts]),
        [t for p in parts for t in p[1]],
        np.concatenate([p[2] for p in parts]),
    )


def build_model():  # noqa: ANN201 - torch is imported lazily
    import torch.nn as nn

    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    class PlateRec(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                *block(1, 32),
                nn.MaxPool2d(2),  # 16 x 64
                *block(32, 64),
                nn.MaxPool2d(2),  # 8 x 32
                *block(64, 96),
                *block(96, 96),
                nn.MaxPool2d((2, 1)),  # 4 x 32
                *block(96, 128),
                *block(128, 128),
                nn.MaxPool2d((2, 1)),  # 2 x 32
                nn.Conv2d(128, 192, (2, 1), bias=False),
                nn.BatchNorm2d(192),
                nn.ReLU(inplace=True),  # 1 x 32
            )
            self.head = nn.Sequential(
                nn.Conv1d(192, 192, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.Dropout(0.1),
                nn.Conv1d(192, 192, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv1d(192, 1 + len(ALPHABET), 1),
            )

        def forward(self, x):  # noqa: ANN001, ANN202
            f = self.features(x).squeeze(2)  # N x C x T
            return self.head(f).transpose(1, 2)  # N x T x classes (logits)

    return PlateRec()


def _targets(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Padded class indices (N x longest) and lengths, as CTCLoss takes them."""
    padded = np.zeros((len(texts), max(len(t) for t in texts)), dtype=np.int64)
    for i, text in enumerate(texts):
        padded[i, : len(text)] = [1 + ALPHABET.index(c) for c in text]
    return padded, np.array([len(t) for t in texts], dtype=np.int64)


def evaluate(model, xs: np.ndarray, texts: list[str], widths: np.ndarray, device: str) -> dict[str, float]:  # noqa: ANN001
    import torch

    model.eval()
    hits = np.zeros(len(texts), dtype=bool)
    with torch.no_grad():
        for i in range(0, len(texts), 1024):
            logits = model(torch.from_numpy(xs[i : i + 1024].astype(np.float32)).to(device))
            probs = torch.softmax(logits, dim=2).cpu().numpy()
            for j, p in enumerate(probs):
                hits[i + j] = ctc_best_path(p)[0] == texts[i + j]
    model.train()
    out = {f"{lo}-{hi}": float(hits[(widths >= lo) & (widths < hi)].mean()) for lo, hi in BINS}
    out["40-80"] = float(hits[(widths >= 40) & (widths < 80)].mean())
    out["all"] = float(hits.mean())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--fonts-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--n-train", type=int, default=300_000)
    parser.add_argument("--n-val", type=int, default=6_000)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--workers", type=int, default=mp.cpu_count())
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--time-limit-s",
        type=float,
        default=1e9,
        help="whole run (data + training) in about this long; the schedule follows it",
    )
    parser.add_argument(
        "--data-limit-s",
        type=float,
        default=0.0,
        help="stop generating training data after this long (0: make all of --n-train)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    import torch

    torch.manual_seed(args.seed)
    fonts = [(str(args.fonts_dir / name), w) for name, w in TRAIN_FONTS]
    t0 = time.time()
    with mp.get_context("fork").Pool(args.workers, initializer=_init, initargs=(str(args.data_dir),)) as pool:
        x_val, t_val, w_val = generate(pool, args.seed + 1, args.n_val, fonts)
        x_unseen, t_unseen, w_unseen = generate(
            pool, args.seed + 2, args.n_val // 2, [(str(args.fonts_dir / UNSEEN_FONT), 1.0)]
        )
        deadline = t0 + args.data_limit_s if args.data_limit_s else None
        x_train, t_train, _ = generate(pool, args.seed, args.n_train, fonts, deadline=deadline)
    device = "cuda" if torch.cuda.is_available() else "cpu"  # after the fork: no CUDA in workers
    log.info("data: %d train, %d val in %.0f s", len(t_train), len(t_val), time.time() - t0)

    model = build_model().to(device)
    log.info("parameters: %d", sum(p.numel() for p in model.parameters()))
    steps_per_epoch = len(t_train) // args.batch
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    # the learning rate follows the time budget (warm-up, then cosine to zero), so a
    # slower machine trains fewer epochs but still ends at a low rate
    budget_s = max(60.0, args.time_limit_s - (time.time() - t0)) if args.time_limit_s < 1e8 else None
    total_steps = args.epochs * steps_per_epoch
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)
    x_gpu = torch.from_numpy(x_train).to(device)  # float16 on the device: ~2.5 GB for 300k
    padded, lengths = (torch.from_numpy(a).to(device) for a in _targets(t_train))
    best_val, best_state = -1.0, None
    t1 = time.time()
    for epoch in range(args.epochs):
        order = torch.from_numpy(np.random.default_rng(epoch).permutation(len(t_train))).to(device)
        total = torch.zeros((), device=device)
        for step in range(steps_per_epoch):
            idx = order[step * args.batch : (step + 1) * args.batch]
            x = x_gpu[idx].float()
            x = x + 0.05 * torch.randn_like(x)  # a little extra sensor noise
            target, target_lengths = padded[idx], lengths[idx]
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
                logits = model(x)  # N x T x C
            log_probs = logits.float().log_softmax(2).transpose(0, 1)  # T x N x C
            input_lengths = torch.full((len(idx),), log_probs.shape[0], dtype=torch.long, device=device)
            loss = ctc(log_probs, target, input_lengths, target_lengths)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            done = (
                (time.time() - t1) / budget_s if budget_s else (epoch * steps_per_epoch + step) / total_steps
            )
            for group in optimiser.param_groups:
                group["lr"] = args.lr * (
                    done / 0.05 if done < 0.05 else 0.5 * (1 + np.cos(np.pi * min(1.0, done)))
                )
            optimiser.step()
            total += loss.detach()
        val = evaluate(model, x_val, t_val, w_val, device)
        if val["all"] > best_val:  # keep the best epoch (late epochs can overfit)
            best_val = val["all"]
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        log.info(
            "epoch %d: loss %.4f, val %s, %.0f s",
            epoch + 1,
            float(total) / steps_per_epoch,
            json.dumps(val),
            time.time() - t1,
        )
        if budget_s and time.time() - t1 >= budget_s:
            log.info("time budget spent")
            break

    model.load_state_dict(best_state)
    metrics = {
        "val": evaluate(model, x_val, t_val, w_val, device),
        "unseen_font": evaluate(model, x_unseen, t_unseen, w_unseen, device),
        "n_train": len(t_train),
        "epochs": epoch + 1,
        "train_s": round(time.time() - t1),
        "fonts": TRAIN_FONTS,
        "unseen": UNSEEN_FONT,
    }
    log.info("metrics: %s", json.dumps(metrics))
    args.out.mkdir(parents=True, exist_ok=True)
    model.eval().cpu()
    torch.onnx.export(
        model,
        torch.zeros(1, 1, INPUT_H, INPUT_W),
        str(args.out / "plate_rec.onnx"),
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": {0: "n"}, "logits": {0: "n"}},
        opset_version=17,
        dynamo=False,
    )
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
