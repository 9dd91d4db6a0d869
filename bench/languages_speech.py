"""Generated speech in several languages (espeak-ng voices), for the language-detection test and
bench/languages.py. Each language has a short paragraph of everyday meeting talk, written for
Hark; one recording per language is the paragraph read by one voice, sentences separated by
half a second of silence."""

from __future__ import annotations

import numpy as np
from synth import RATE, speak

PARAGRAPHS: dict[str, list[str]] = {
    "de": [
        "Guten Morgen, wir besprechen heute den Haushalt für das nächste Jahr.",
        "Die Kosten für die neue Halle sind leider deutlich gestiegen.",
        "Können wir die Entscheidung auf die nächste Woche verschieben?",
    ],
    "es": [
        "Buenos días, hoy hablamos del presupuesto del próximo año.",
        "Los costes de la nueva sala han subido bastante este mes.",
        "¿Podemos dejar la decisión para la semana que viene?",
    ],
    "fr": [
        "Bonjour à tous, nous parlons aujourd'hui du budget de l'année prochaine.",
        "Le coût de la nouvelle salle a beaucoup augmenté ce mois-ci.",
        "Pouvons-nous reporter la décision à la semaine prochaine?",
    ],
    "it": [
        "Buongiorno a tutti, oggi parliamo del bilancio del prossimo anno.",
        "Il costo della nuova sala è aumentato molto questo mese.",
        "Possiamo rimandare la decisione alla settimana prossima?",
    ],
    "pt": [
        "Bom dia a todos, hoje falamos do orçamento do próximo ano.",
        "O custo da nova sala aumentou bastante este mês.",
        "Podemos adiar a decisão para a próxima semana?",
    ],
    "ru": [
        "Доброе утро, сегодня мы обсуждаем бюджет на следующий год.",
        "Стоимость нового зала в этом месяце сильно выросла.",
        "Можем ли мы отложить решение на следующую неделю?",
    ],
    "pl": [
        "Dzień dobry wszystkim, dzisiaj omawiamy budżet na przyszły rok.",
        "Koszt nowej sali bardzo wzrósł w tym miesiącu.",
        "Czy możemy przełożyć decyzję na przyszły tydzień?",
    ],
    "cs": [
        "Dobré ráno všem, dnes probíráme rozpočet na příští rok.",
        "Náklady na nový sál tento měsíc hodně vzrostly.",
        "Můžeme rozhodnutí odložit na příští týden?",
    ],
    "fi": [
        "Hyvää huomenta kaikille, tänään käsittelemme ensi vuoden budjettia.",
        "Uuden salin kustannukset ovat nousseet paljon tässä kuussa.",
        "Voimmeko siirtää päätöksen ensi viikkoon?",
    ],
    "nl": [
        "Goedemorgen allemaal, vandaag bespreken we de begroting voor volgend jaar.",
        "De kosten van de nieuwe zaal zijn deze maand flink gestegen.",
        "Kunnen we de beslissing uitstellen tot volgende week?",
    ],
    "en": [
        "Good morning everyone, today we discuss the budget for next year.",
        "The cost of the new hall has gone up a lot this month.",
        "Can we move the decision to next week?",
    ],
}
# espeak-ng voice per language (Debian's espeak-ng-data names).
VOICE = {lang: lang for lang in PARAGRAPHS} | {"fr": "fr-fr", "en": "en-us"}


def paragraph_speech(language: str, wpm: int = 150) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The paragraph as float32 samples at 16 kHz, and each sentence's (start, end) in seconds."""
    gap = np.zeros(RATE // 2, dtype=np.float32)
    parts: list[np.ndarray] = [gap]
    spans: list[tuple[float, float]] = []
    at = len(gap)
    for sentence in PARAGRAPHS[language]:
        voiced = speak((VOICE[language], 50, wpm), sentence)
        spans.append((at / RATE, (at + len(voiced)) / RATE))
        parts += [voiced, gap]
        at += len(voiced) + len(gap)
    return np.concatenate(parts), spans
