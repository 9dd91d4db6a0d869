"""Who speaks when: speaker windows → clustered speakers → smoothed turns inside the VAD segments.

Clustering sees windows (1 s by default) averaged with their neighbours, which finds the voices
but blurs speaker changes. Resegmentation re-decides on a fine time grid instead: every 0.1 s
frame of a VAD segment is scored against each speaker's centroid by the windows covering it, and
a Viterbi pass picks the best speaker path with a cost per change, so a turn changes only where
the evidence for another voice outweighs that cost.

With the VAD's frame probabilities (prepare stores them beside the PCM) turns then follow the
speech, not the segment: a VAD segment is padded and bridges pauses up to its minimum silence, so
turns spanning whole segments counted those pauses as speech. A change of speaker costs less in
a pause, so changes land there; one speaker's pauses under FILL_S stay inside the turn, as
reference annotations keep them. Where one speaker follows another with no pause at all, both are
usually talking for a moment, so each is also marked a little into the other's turn
(`Diarization.overlaps`): a single label per frame cannot score overlapped speech otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from worker.clustering import ClusterOptions, centred, centroids, cluster, merge_same_voice, normalize

FRAME_S = 0.1
# Cost of a speaker change, in units of per-frame score advantage: a change needs about this much
# summed evidence (e.g. a centred cosine 0.1 better over 0.3 s of frames) to happen.
SWITCH_COST = 0.3
# Clustering sees each window averaged with its neighbours this far (seconds) either side.
SMOOTH_S = 0.75
# Rounds of re-assigning windows to the nearest centroid after clustering.
REFINE_ROUNDS = 3


@dataclass
class Turn:
    start_s: float
    end_s: float
    speaker: str


def speaker_name(label: int) -> str:
    return f"SPEAKER_{label:02d}"


@dataclass
class Diarization:
    """The outcome: turns in time order (one speaker at a time), window labels, each speaker's
    centroid by name, and overlaps: a speaker also heard inside another's turn, in time order."""

    turns: list[Turn]
    labels: np.ndarray
    centroids: dict[str, np.ndarray]
    overlaps: list[Turn] = field(default_factory=list)


@dataclass(frozen=True)
class SpeechProbabilities:
    """The VAD's per-frame speech probabilities for the whole recording (frame `frame_s` long).
    prepare stores them as one byte a frame (about 1 MB for ten hours) for reduce to read."""

    probs: np.ndarray
    frame_s: float
    # Speech is where a frame's probability reaches this: the VAD's own onset threshold
    # (Settings.vad_threshold), so turns and segments agree on what is speech.
    threshold: float = 0.3

    def to_bytes(self) -> bytes:
        return np.clip(np.round(self.probs * 255), 0, 255).astype(np.uint8).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, frame_s: float, threshold: float = 0.3) -> SpeechProbabilities:
        return cls(np.frombuffer(data, dtype=np.uint8).astype(np.float32) / 255, frame_s, threshold)


# Quieter stretches shorter than SPEECH_MIN_GAP_S are not pauses. silero rises a few frames after
# a voice starts and falls with it, so only onsets are moved earlier, by SPEECH_ONSET_PAD_S.
SPEECH_MIN_GAP_S = 0.1
SPEECH_ONSET_PAD_S = 0.05
# A change of speaker inside a pause costs this fraction of SWITCH_COST.
PAUSE_SWITCH = 0.3
# One speaker's pauses shorter than this stay inside the turn: people annotating meetings mark a
# turn from its first word to its last, breaths and hesitations included. (Filling across VAD
# segments as well took a little more speech back on meetings but marked telephone pauses as
# speech.)
FILL_S = 1.0
# At a change of speaker with no pause, each speaker is also marked this far into the other's
# turn, when both turns last at least OVERLAP_MIN_TURN_S (shorter ones are mostly confusion).
OVERLAP_S = 0.15
OVERLAP_MIN_TURN_S = 0.5
# Removing the recording's mean (worker.clustering.centred) leaves only noise when one person
# speaks, and clustering then splits that noise into many "speakers". So before more than one
# speaker is accepted, the best two-way split of the windows must separate them at least this
# well (Fisher ratio along the line between the halves' means).
ONE_VOICE_SEPARATION = 3.0
ONE_VOICE_SAMPLE = 1000


def speech_spans(speech: SpeechProbabilities, start: float, end: float) -> list[tuple[float, float]]:
    """The parts of [start, end) where the VAD heard speech, at its own frame resolution."""
    f = speech.frame_s
    lo, hi = max(0, int(np.floor(start / f))), min(speech.probs.size, int(np.ceil(end / f)))
    if hi <= lo:
        return [(start, end)]
    on = speech.probs[lo:hi] >= speech.threshold
    if not on.any():
        return [(start, end)]
    edges = np.flatnonzero(np.diff(np.concatenate([[0], on.astype(np.int8), [0]])))
    spans: list[list[float]] = []
    for a, b in zip(edges[::2], edges[1::2]):
        s, e = max(start, (lo + a) * f - SPEECH_ONSET_PAD_S), min(end, (lo + b) * f)
        if spans and s - spans[-1][1] < SPEECH_MIN_GAP_S:
            spans[-1][1] = e
        else:
            spans.append([s, e])
    return [(s, e) for s, e in spans]


def diarize(
    segments: list[tuple[float, float]],
    starts: np.ndarray,
    ends: np.ndarray,
    vectors: np.ndarray,
    options: ClusterOptions = ClusterOptions(),
    speech: SpeechProbabilities | None = None,
) -> Diarization:
    """Cluster the windows, then resegment every VAD segment against the speakers' centroids.
    `segments` are in time order; windows (`starts`, `ends`, `vectors`) in any order."""
    if vectors.shape[0] == 0:  # every segment too short to embed: one speaker
        spans = [p for a, b in segments for p in (speech_spans(speech, a, b) if speech is not None else [(a, b)])]
        return Diarization(
            [Turn(round(s, 3), round(e, 3), speaker_name(0)) for s, e in spans], np.zeros(0, dtype=int), {}
        )
    order = np.argsort(starts, kind="stable")
    starts, ends, vectors = starts[order], ends[order], vectors[order]
    x = centred(vectors)
    seg_of = np.searchsorted(np.array([s for s, _ in segments]), starts + 1e-6, side="right")
    hop = float(np.median(np.diff(starts))) if starts.size > 1 else 1.0
    radius = max(1, int(round(SMOOTH_S / max(hop, 1e-3))))
    smoothed = smooth_within_segments(x, seg_of, radius)
    labels = cluster(smoothed, options)
    if labels.max() > 0 and not options.num_speakers and options.min_speakers <= 1 and _one_voice(x, smoothed, options):
        labels = np.zeros_like(labels)
    if not options.num_speakers and options.voice_similarity < 1:
        labels = merge_same_voice(vectors, labels, options.voice_similarity, options.min_speakers)
    for _ in range(REFINE_ROUNDS):
        labels = _reassign(x, labels)
    scores = x @ centroids(x, labels).T  # windows × speakers
    turns: list[Turn] = []
    overlaps: list[Turn] = []
    for seg_start, seg_end in segments:
        first = len(turns)
        spans = speech_spans(speech, seg_start, seg_end) if speech is not None else [(seg_start, seg_end)]
        frame_scores = _frame_scores(seg_start, seg_end, starts, ends, scores)
        path = _viterbi(frame_scores, _switch_costs(seg_start, frame_scores.shape[0], spans))
        begin = 0
        for i in range(1, path.size + 1):
            if i == path.size or path[i] != path[begin]:
                a = seg_start + begin * FRAME_S
                b = seg_end if i == path.size else seg_start + i * FRAME_S
                for s, e in spans:
                    if min(b, e) - max(a, s) > 1e-3:
                        turns.append(Turn(round(max(a, s), 3), round(min(b, e), 3), speaker_name(int(path[begin]))))
                begin = i
        turns[first:] = _fill_pauses(turns[first:], FILL_S)
        overlaps.extend(_overlaps_at_changes(turns[first:], OVERLAP_S))
    # Speakers are named SPEAKER_00, 01, … in order of first appearance; one that lost every
    # frame to the resegmentation disappears. Centroids are plain means of the speaker's GE2E
    # vectors (not centred), so they compare across recordings.
    names: dict[str, str] = {}
    for t in turns:
        names.setdefault(t.speaker, speaker_name(len(names)))
    found = {
        names[speaker_name(k)]: vectors[labels == k].mean(axis=0)
        for k in range(int(labels.max()) + 1)
        if speaker_name(k) in names and np.any(labels == k)
    }
    window_labels = np.empty_like(labels)
    window_labels[order] = labels

    def rename(ts: list[Turn]) -> list[Turn]:
        return [Turn(t.start_s, t.end_s, names[t.speaker]) for t in ts]

    return Diarization(rename(turns), window_labels, found, rename(overlaps))


def smooth_within_segments(x: np.ndarray, seg_of: np.ndarray, radius: int = 1) -> np.ndarray:
    """Each (time-ordered) window averaged with its `radius` neighbours on either side that lie in
    the same VAD segment: a speaker rarely changes within a second, and the average is a far less
    noisy vector for clustering than one short window."""
    total, count = x.copy(), np.ones(x.shape[0], dtype=np.float32)
    for shift in range(1, radius + 1):
        same = seg_of[shift:] == seg_of[:-shift]
        total[shift:][same] += x[:-shift][same]
        total[:-shift][same] += x[shift:][same]
        count[shift:][same] += 1
        count[:-shift][same] += 1
    return normalize(total / count[:, None])


def _one_voice(x: np.ndarray, smoothed: np.ndarray, options: ClusterOptions) -> bool:
    """Whether the windows are better explained by one speaker: split (an even sample of) them in
    two and measure how far apart the halves are on the unsmoothed windows."""
    pick = np.linspace(0, x.shape[0] - 1, min(x.shape[0], ONE_VOICE_SAMPLE)).round().astype(int)
    halves = cluster(smoothed[pick], replace(options, num_speakers=2))
    return separation(x[pick], halves == 0, halves == 1) < ONE_VOICE_SEPARATION


def separation(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Fisher ratio of two groups of rows projected on the line through their means: distance of
    the projected means over the pooled standard deviation (about 4.6 when 99 % of rows sit
    nearer their own mean)."""
    if not a.any() or not b.any():
        return 0.0
    direction = x[a].mean(axis=0) - x[b].mean(axis=0)
    direction /= max(float(np.linalg.norm(direction)), 1e-9)
    pa, pb = x[a] @ direction, x[b] @ direction
    return float(abs(pa.mean() - pb.mean()) / np.sqrt(max((pa.var() + pb.var()) / 2, 1e-12)))


def _reassign(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """One round of spherical k-means from the clustering's labels (speakers never multiply)."""
    cents = centroids(x, labels)
    new = np.argmax(x @ cents.T, axis=1)
    present = np.unique(new)
    return np.searchsorted(present, new)


def _frame_scores(
    seg_start: float, seg_end: float, starts: np.ndarray, ends: np.ndarray, scores: np.ndarray
) -> np.ndarray:
    """Per 0.1 s frame of one segment, the mean score of the windows covering it; frames no
    window covers take the nearest window's scores."""
    frames = max(1, int(np.ceil((seg_end - seg_start) / FRAME_S - 1e-6)))
    centres = seg_start + (np.arange(frames) + 0.5) * FRAME_S
    lo = int(np.searchsorted(ends, seg_start - 30.0))  # windows are short: only nearby ones matter
    hi = int(np.searchsorted(starts, seg_end, side="right"))
    s, e, sc = starts[lo:hi], ends[lo:hi], scores[lo:hi]
    inside = (s[None, :] <= centres[:, None]) & (e[None, :] > centres[:, None])
    counts = inside.sum(axis=1)
    out = (inside.astype(np.float32) @ sc) / np.maximum(counts, 1)[:, None]
    missing = np.nonzero(counts == 0)[0]
    if missing.size:
        mids = (starts + ends) / 2
        nearest = np.abs(mids[None, :] - centres[missing, None]).argmin(axis=1)
        out[missing] = scores[nearest]
    return out


def _switch_costs(seg_start: float, frames: int, spans: list[tuple[float, float]]) -> np.ndarray:
    """Cost of changing speaker before each frame: lower in a pause than in the middle of speech."""
    costs = np.full(frames, SWITCH_COST * PAUSE_SWITCH)
    centres = seg_start + (np.arange(frames) + 0.5) * FRAME_S
    for s, e in spans:
        costs[(centres >= s) & (centres < e)] = SWITCH_COST
    return costs


def _overlaps_at_changes(turns: list[Turn], reach_s: float) -> list[Turn]:
    """Where one speaker follows another with no pause between them, people usually talk over
    each other for a moment: each speaker is also heard a little into the other's turn."""
    out: list[Turn] = []
    for a, b in zip(turns, turns[1:]):
        if b.start_s - a.end_s > 1e-6 or a.speaker == b.speaker:
            continue
        t = a.end_s
        if min(a.end_s - a.start_s, b.end_s - b.start_s) < OVERLAP_MIN_TURN_S:
            continue
        if reach_s > 0:
            out.append(Turn(round(max(a.start_s, t - reach_s), 3), t, b.speaker))
            out.append(Turn(t, round(min(b.end_s, t + reach_s), 3), a.speaker))
    return out


def _fill_pauses(turns: list[Turn], fill_s: float) -> list[Turn]:
    """Join consecutive turns of one speaker separated by less than `fill_s` of silence."""
    out: list[Turn] = []
    for t in turns:
        if out and out[-1].speaker == t.speaker and t.start_s - out[-1].end_s < fill_s:
            out[-1] = Turn(out[-1].start_s, t.end_s, t.speaker)
        else:
            out.append(t)
    return out


def _viterbi(frame_scores: np.ndarray, costs: np.ndarray | None = None) -> np.ndarray:
    """Best speaker per frame maximising summed scores minus the switch cost per change."""
    t, k = frame_scores.shape
    if costs is None:
        costs = np.full(t, SWITCH_COST)
    total = frame_scores[0].astype(np.float64).copy()
    back = np.zeros((t, k), dtype=np.int64)
    for i in range(1, t):
        best_prev = int(np.argmax(total))
        switch = total[best_prev] - costs[i]
        stay = total >= switch
        back[i] = np.where(stay, np.arange(k), best_prev)
        total = np.where(stay, total, switch) + frame_scores[i]
    path = np.empty(t, dtype=np.int64)
    path[-1] = int(np.argmax(total))
    for i in range(t - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return path
