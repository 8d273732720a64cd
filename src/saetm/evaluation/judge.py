"""LLM-judged topic quality (the paper's headline measures) with a pluggable judge.

A *judge* is any callable ``prompt: str -> str``: a local model wrapped in a
function, a rule written for a test, or :class:`OpenAIJudge`, which talks to any
OpenAI-compatible ``/v1/chat/completions`` endpoint (vLLM, llama.cpp, Ollama,
OpenAI) at temperature 0 using only the standard library.

- :func:`llm_coherence`: the judge rates how related a topic's top ``n_words``
  words are, 0–100, once per shuffle of the words (word order biases LLMs); a
  topic's score is the mean of its parsed ratings.
- :func:`intruder_detection`: the judge sees ``n_words`` top words of a topic plus
  one *intruder* (the highest-ranked word of a randomly chosen other topic that is
  not in this topic's list), shuffled, and names the odd one out. Chance level
  is ``1 / (n_words + 1)``.

Answers are parsed leniently (:func:`parse_rating`, :func:`parse_intruder`); an
answer that cannot be read is counted in ``n_unparsed`` and never raises. All
random choices come from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from typing import Callable, Sequence

import numpy as np

from saetm.errors import SaetmError
from saetm.evaluation.coherence import topic_word_lists

COHERENCE_PROMPT = (
    "Here are the top words of a topic found in a collection of documents:\n"
    "{words}\n\n"
    "How closely related are these words to each other? Rate them on a scale from 0 "
    "(completely unrelated) to 100 (all clearly about one theme). "
    "Reply with the number only."
)

INTRUDER_PROMPT = (
    "All but one of the following words belong to one topic. Which word is the intruder "
    "that does not belong with the others?\n"
    "{words}\n\n"
    "Reply with the intruder word only."
)


# --------------------------------------------------------------------------- judges

class OpenAIJudge:
    """A judge backed by an OpenAI-compatible chat-completions endpoint.

    ``url``: the server (``http://host:8000``), its ``/v1`` base, or the full
    ``.../v1/chat/completions`` address; ``model``: the model name the server
    expects; ``api_key``: sent as a bearer token when given (never read from the
    environment); ``timeout``: seconds per request. Requests use temperature 0;
    rate limits (429) and server errors (5xx) are retried ``max_retries`` times.
    """

    def __init__(self, url: str, model: str, api_key: str | None = None, timeout: float = 60.0,
                 max_retries: int = 2, max_tokens: int | None = 64, system_prompt: str | None = None):
        self.url = url
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_tokens = max_tokens
        self.system_prompt = system_prompt
        self.endpoint = self._endpoint(url)

    @staticmethod
    def _endpoint(url: str) -> str:
        url = str(url).rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise SaetmError(f"the judge url must start with http:// or https://, got {url!r}")
        if url.endswith("/chat/completions"):
            return url
        if url.endswith("/v1"):
            return url + "/chat/completions"
        return url + "/v1/chat/completions"

    def __repr__(self) -> str:
        return f"OpenAIJudge(url={self.url!r}, model={self.model!r})"

    def __call__(self, prompt: str) -> str:
        messages = [{"role": "user", "content": prompt}]
        if self.system_prompt:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        body = {"model": self.model, "messages": messages, "temperature": 0}
        if self.max_tokens:
            body["max_tokens"] = self.max_tokens
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = json.dumps(body).encode("utf-8")
        for attempt in range(self.max_retries + 1):
            request = urllib.request.Request(self.endpoint, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    payload = json.loads(response.read().decode("utf-8"))
                break
            except urllib.error.HTTPError as err:
                retry = err.code == 429 or err.code >= 500
                if not retry or attempt == self.max_retries:
                    detail = err.read()[:200].decode("utf-8", "replace")
                    raise SaetmError(f"the judge at {self.endpoint} answered HTTP {err.code}: {detail}") from None
            except (urllib.error.URLError, TimeoutError, OSError) as err:
                if attempt == self.max_retries:
                    reason = getattr(err, "reason", err)
                    raise SaetmError(f"could not reach the judge at {self.endpoint} ({reason}); "
                                     "check the url and that the server is running") from None
            except json.JSONDecodeError:
                raise SaetmError(f"the judge at {self.endpoint} did not answer with JSON") from None
            time.sleep(min(2.0**attempt, 10.0))
        try:
            content = payload["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise SaetmError(f"the judge at {self.endpoint} answered without choices[0].message.content") from None
        return "" if content is None else str(content)


def _check_judge(judge) -> Callable[[str], str]:
    if not callable(judge):
        raise SaetmError("judge must be a callable prompt -> answer, e.g. OpenAIJudge(url, model)")
    return judge


# --------------------------------------------------------------------------- parsing

_NUMBER = r"(-?\d+(?:\.\d+)?)"
_SCALE_ECHO = re.compile(r"(?:from|between|of)?\s*\b[01]\s*(?:-|–|—|to|and)\s*100\b")
_FRACTION = re.compile(_NUMBER + r"\s*(?:/|out of)\s*(\d+(?:\.\d+)?)")
_LABELLED = re.compile(r"(?:rating|score|rate|answer)\w*\s*(?:is|of|would be|:|=)?\s*[:=]?\s*" + _NUMBER)
_RANGE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*(?:-|–|—|to)\s*(\d+(?:\.\d+)?)")


def parse_rating(answer: str | None, low: float = 0.0, high: float = 100.0) -> float | None:
    """Read a 0–100 rating from a free-text answer; None if there is none.

    Understands a bare number, numbers inside prose ("I'd rate these 85."),
    "Rating: 85", "85/100", "8/10" and "8 out of 10" (rescaled to 0–100), ranges
    ("70-80" → 75), and ignores echoes of the scale ("on a scale of 0 to 100").
    A value outside ``[low, high]`` is rejected (None) rather than clamped, since
    it usually means a different number was picked up.
    """
    if answer is None:
        return None
    text = str(answer).lower().replace(",", " ").replace("*", " ").replace("`", " ")
    text = _SCALE_ECHO.sub(" ", text)
    value = None
    if m := _FRACTION.search(text):
        num, den = float(m.group(1)), float(m.group(2))
        value = num * (high / den) if den > 0 else None
    elif m := _LABELLED.search(text):
        value = float(m.group(1))
    elif m := _RANGE.search(text):
        value = (float(m.group(1)) + float(m.group(2))) / 2
    else:
        # The first number on the scale: skips stray ones such as "top-5" or a year.
        value = next((float(x) for x in re.findall(_NUMBER, text) if low <= float(x) <= high), None)
    if value is None or not np.isfinite(value) or not (low <= value <= high):
        return None
    return value


_STRIP = " \t\r\n\"'`*_.,:;!?()[]{}<>“”‘’«»"
_QUOTED = re.compile(r"[\"'`*“‘«]+\s*([^\"'`*“”‘’«»\n]+?)\s*[\"'`*”’»]+")
_WORD = r"([^\s\"'`*“”‘’«».,;:!?()]+)"
_POINTER = re.compile(r"(?:intruder|answer|odd one(?: out)?|odd word)"
                      r"\s*(?:is|would be|:|=|-|–)?\s*[:\-–]?\s*[\"'`*“‘«]*\s*" + _WORD)
_POINTED = re.compile(_WORD + r"[\"'`*”’»]*\s*(?:does not belong|doesn't belong|is the intruder|is the odd)")


def _mentions(text: str, word: str) -> list[int]:
    pattern = r"(?<![\w])" + re.escape(word) + r"(?![\w])"
    return [m.start() for m in re.finditer(pattern, text)]


def parse_intruder(answer: str | None, candidates: Sequence[str]) -> int | None:
    """Index in ``candidates`` of the word the answer names; None if unclear.

    Case, quotes, markdown and punctuation are ignored; a number 1..n (alone or as
    "word 3" / "#3") is read as a 1-based position in the shown list. If the answer
    mentions several candidates, a quoted one or one after "intruder is" /
    "answer:" wins; otherwise the answer is unclear.
    """
    if answer is None:
        return None
    lowered = [str(c).lower() for c in candidates]
    stripped = [c.strip(_STRIP) for c in lowered]
    text = str(answer).lower().strip()
    bare = text.strip(_STRIP)
    if bare in stripped:
        return stripped.index(bare)
    if m := re.fullmatch(r"(?:#|no\.?|number|word|option)?\s*(\d+)", bare):
        k = int(m.group(1))
        return k - 1 if 1 <= k <= len(candidates) else None
    mentioned = [i for i, c in enumerate(lowered) if _mentions(text, c)]
    if len(mentioned) == 1:
        return mentioned[0]
    if len(mentioned) > 1:
        for finder in (_POINTER, _POINTED, _QUOTED):
            found = (m.group(1).strip(_STRIP) for m in finder.finditer(text))
            picked = {stripped.index(w) for w in found if w in stripped}
            if len(picked) == 1:
                return picked.pop()
        return None
    numbers = [int(k) for k in re.findall(r"(?<![\w.])(\d+)(?![\w.])", text)]
    numbers = [k for k in numbers if 1 <= k <= len(candidates)]
    if len(set(numbers)) == 1:
        return numbers[0] - 1
    return None


# --------------------------------------------------------------------------- protocols

def llm_coherence(topics: Sequence[Sequence[str]], judge: Callable[[str], str], n_words: int = 5,
                  n_shuffles: int = 3, seed: int = 0, prompt: str = COHERENCE_PROMPT) -> dict:
    """LLM-rated coherence (0–100) of each topic's top ``n_words``, averaged over shuffles.

    Returns ``{"mean", "per_topic", "n_queries", "n_unparsed", "responses"}``:
    ``per_topic`` is NaN where no answer could be parsed (left out of the mean);
    ``responses`` lists ``{"topic", "words", "answer", "rating"}`` for auditing.
    """
    judge = _check_judge(judge)
    if n_words < 2 or n_shuffles < 1:
        raise SaetmError("llm_coherence needs n_words >= 2 and n_shuffles >= 1")
    rng = np.random.default_rng(seed)
    lists = topic_word_lists(topics, n_words)
    per_topic, responses, n_unparsed = [], [], 0
    for t, words in enumerate(lists):
        ratings = []
        for _ in range(n_shuffles):
            shown = [words[i] for i in rng.permutation(len(words))]
            answer = judge(prompt.format(words=", ".join(shown)))
            rating = parse_rating(answer)
            if rating is None:
                n_unparsed += 1
            else:
                ratings.append(rating)
            responses.append({"topic": t, "words": shown, "answer": answer, "rating": rating})
        per_topic.append(float(np.mean(ratings)) if ratings else float("nan"))
    per = np.asarray(per_topic)
    return {
        "mean": float(np.nanmean(per)) if np.isfinite(per).any() else float("nan"),
        "per_topic": per.tolist(),
        "n_queries": len(responses),
        "n_unparsed": n_unparsed,
        "responses": responses,
    }


def choose_intruder(lists: list[list[str]], t: int, rng: np.random.Generator) -> str | None:
    """The highest-ranked word of a random other topic that is not among topic ``t``'s words."""
    own = set(lists[t])
    for other in rng.permutation(len(lists)):
        if other == t:
            continue
        for word in lists[other]:
            if word not in own:
                return word
    return None


def intruder_detection(topics: Sequence[Sequence[str]], judge: Callable[[str], str], n_words: int = 4,
                       seed: int = 0, n_trials: int = 1, prompt: str = INTRUDER_PROMPT) -> dict:
    """Word-intrusion accuracy: can the judge spot a word from another topic?

    For every topic (``n_trials`` times) the judge sees its top ``n_words`` plus one
    intruder in random order, numbered. ``topics`` should list more words per topic
    than ``n_words`` (e.g. 10): an intruder is never one of the topic's listed words.
    An unparseable answer counts as a miss (and in ``n_unparsed``); topics with fewer
    than ``n_words`` words, or without any possible intruder, are skipped.
    Returns ``{"accuracy", "per_topic", "chance", "n_queries", "n_unparsed",
    "n_skipped", "responses"}``.
    """
    judge = _check_judge(judge)
    if n_words < 2 or n_trials < 1:
        raise SaetmError("intruder_detection needs n_words >= 2 and n_trials >= 1")
    lists = topic_word_lists(topics, None)
    if len(lists) < 2:
        raise SaetmError("intruder detection needs at least two topics (intruders come from other topics)")
    rng = np.random.default_rng(seed)
    per_topic, responses, n_unparsed, n_skipped = [], [], 0, 0
    for t, words in enumerate(lists):
        intruder = choose_intruder(lists, t, rng) if len(words) >= n_words else None
        if intruder is None:
            n_skipped += 1
            per_topic.append(float("nan"))
            continue
        hits = []
        for _ in range(n_trials):
            shown = words[:n_words] + [intruder]
            shown = [shown[i] for i in rng.permutation(len(shown))]
            listing = "\n".join(f"{i + 1}. {w}" for i, w in enumerate(shown))
            answer = judge(prompt.format(words=listing))
            picked = parse_intruder(answer, shown)
            n_unparsed += picked is None
            hit = picked is not None and shown[picked] == intruder
            hits.append(hit)
            responses.append({"topic": t, "words": shown, "intruder": intruder, "answer": answer,
                              "picked": None if picked is None else shown[picked], "correct": hit})
        per_topic.append(float(np.mean(hits)))
    per = np.asarray(per_topic)
    return {
        "accuracy": float(np.nanmean(per)) if np.isfinite(per).any() else float("nan"),
        "per_topic": per.tolist(),
        "chance": 1.0 / (n_words + 1),
        "n_queries": len(responses),
        "n_unparsed": n_unparsed,
        "n_skipped": n_skipped,
        "responses": responses,
    }
