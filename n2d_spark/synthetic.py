"""A synthetic review corpus with planted topics, so the default run needs no download
and can report how well the planted topics were recovered.

Each review has one planted genre. Its words are drawn from that genre's vocabulary,
a large vocabulary of filler words shared by every genre (Zipf-distributed, like real
text), positive or negative words matching its sentiment, and English stop words; it
is cut into sentences, and a few reviews carry the HTML line breaks and italics that
real scraped reviews have, and quoted phrases that exercise the CSV quoting rules.
Everything is drawn from one seeded generator: the same seed gives the same corpus.

With ``dates=True`` each review also gets a publication date over two years, with two
planted trends: one genre's reviews grow more frequent over time, another's fade. The
dates are drawn after everything else, so the reviews are those of the corpus without dates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

GENRES: dict[str, str] = {
    "horror": "ghost haunted blood scream zombie demon creepy gore slasher terror possessed "
    "nightmare corpse vampire cursed exorcism jumpscare basement graveyard witch eerie "
    "monster killer chainsaw asylum ritual spooky undead coffin hellish",
    "romance": "love kiss wedding romantic heart couple boyfriend girlfriend passion marriage "
    "date sweetheart affection flirt bride groom chemistry embrace valentine proposal "
    "longing soulmate tender heartbreak engagement honeymoon crush darling beloved",
    "scifi": "spaceship alien planet galaxy robot laser starship android cyborg asteroid "
    "wormhole orbit astronaut martian telepathic hologram teleport futuristic dystopia "
    "spacecraft interstellar mutant clone quantum reactor colony cosmic nebula warp",
    "western": "cowboy sheriff saloon outlaw horse ranch frontier gunslinger revolver desert "
    "cattle bandit posse stagecoach prairie marshal rustler duel canyon wagon bounty "
    "homestead spurs lasso tumbleweed rifle deputy showdown gallows railroad",
    "war": "soldier battle army platoon sergeant trench bomb enemy invasion infantry tank "
    "general battlefield combat veteran regiment bullet grenade airstrike commander "
    "frontline troops mission wartime captured rifleman bunker allied medic",
    "comedy": "hilarious joke laugh funny comedian gag slapstick prank witty parody sitcom "
    "punchline goofy silly humor spoof sketch sarcastic chuckle absurd quirky banter "
    "wacky farce giggle standup clown amusing satire zany",
    "animation": "animated cartoon pixar disney animator voiced princess talking animals "
    "colorful musical song toddlers kids family dragon fairy magical adventure sidekick "
    "storybook puppet stopmotion drawn whimsical villainess enchanted castle fable",
    "crime": "detective murder police gangster heist mafia robbery cop investigation suspect "
    "mobster thief homicide witness prosecutor courtroom alibi smuggler kidnapping "
    "undercover corrupt informant cartel ransom forensic interrogation hitman getaway",
}

FILLER = (
    "movie film story plot character actor actress scene director cast performance ending "
    "script screen camera role audience time people life world man woman year day night "
    "way part thing place house city town family friend father mother son daughter brother "
    "sister girl boy child group team music sound effects dialogue shot sequence moment "
    "minutes hours version original sequel series episode production budget studio release "
    "theater dvd rental watch seen watching looks feel feels felt thought think point idea "
    "reason fact case kind sort lot bit level side face eyes voice head hand room car road "
    "water fire money job work school home truth history book novel writer writing style "
    "tone pace mood setting background role lead supporting credits opening middle start "
    "finish twist surprise turn events situation problem question answer attempt chance "
    "result effect picture image color light dark black white red big small long short "
    "young old new early late high low real true whole full main certain different similar "
    "simple clear strong hard easy human personal public local national american british "
    "french english modern classic recent famous popular serious dramatic emotional "
    "visual technical musical physical final second third fourth previous following "
    "former latter particular general common special entire single various certain "
    "close open free fair quick slow quiet loud rich poor huge tiny wide narrow deep "
    "shallow heavy thin thick sharp soft bright"
).split()

POSITIVE = (
    "great excellent wonderful brilliant amazing superb fantastic beautiful masterpiece "
    "enjoyed loved perfect outstanding touching gripping memorable delightful stunning "
    "best favorite recommend charming powerful moving"
).split()

NEGATIVE = (
    "bad terrible awful boring worst waste horrible poor stupid dull disappointing "
    "mess pointless lame annoying predictable ridiculous weak painful forgettable "
    "unwatchable tedious cheap clumsy"
).split()

STOP_WORDS = "the a an and of to in is it that this was with for as but on have be at by not".split()

# Shares of a review's words by source; the genre share varies per review so that
# some reviews are much harder to place than others.
GENRE_SHARE_RANGE = (0.10, 0.30)
_SENTIMENT_SHARE = 0.08
_STOP_SHARE = 0.25

# dates=True: the genre whose share of the reviews rises over the span, the one whose share
# falls, and the span. A rising genre's dates are drawn with density 3u^2 over the span's
# fraction u, a fading one's with 3(1-u)^2, every other genre's uniformly.
TRENDS = {"rising": "scifi", "fading": "western"}
DATE_SPAN = ("2024-01-01", "2025-12-31")


def generate_reviews(
    n_rows: int,
    seed: int = 0,
    median_words: int = 120,
    genre_share: tuple[float, float] = GENRE_SHARE_RANGE,
    dates: bool = False,
    users: int = 0,
) -> pd.DataFrame:
    """``n_rows`` synthetic reviews: columns ``review``, ``sentiment``, ``topic`` (and ``date``, and ``user``).

    ``genre_share`` bounds the share of a review's words drawn from its genre: the lower it
    is, the weaker the planted signal against the shared filler words. ``users`` > 0 adds who
    wrote each review, reviewers with tastes (``_planted_users``); the other columns stay as
    they are without it.
    """
    if n_rows < 0:
        raise ValueError(f"n_rows must be >= 0, got {n_rows}")
    rng = np.random.default_rng(seed)
    genre_names = list(GENRES)
    genre_words = [np.array(GENRES[g].split()) for g in genre_names]
    filler = np.array(FILLER)
    zipf = 1.0 / np.arange(1, len(filler) + 1)
    filler_p = zipf / zipf.sum()
    sentiment_words = {"positive": np.array(POSITIVE), "negative": np.array(NEGATIVE)}
    stop = np.array(STOP_WORDS)

    topics = rng.integers(0, len(genre_names), size=n_rows)
    sentiments = np.where(rng.random(n_rows) < 0.5, "positive", "negative")
    lengths = np.clip(rng.lognormal(np.log(median_words), 0.6, size=n_rows), 20, 1500).astype(int)
    genre_share = rng.uniform(*genre_share, size=n_rows)

    reviews = []
    for topic, sentiment, length, share in zip(topics, sentiments, lengths, genre_share):
        source = rng.choice(
            4, size=length, p=[share, _SENTIMENT_SHARE, _STOP_SHARE, 1 - share - _SENTIMENT_SHARE - _STOP_SHARE]
        )
        words = np.empty(length, dtype=object)
        for code, vocabulary, p in (
            (0, genre_words[topic], None),
            (1, sentiment_words[sentiment], None),
            (2, stop, None),
            (3, filler, filler_p),
        ):
            mask = source == code
            words[mask] = rng.choice(vocabulary, size=int(mask.sum()), p=p)
        reviews.append(_as_prose(words, rng))
    frame = pd.DataFrame(
        {
            "review": reviews,
            "sentiment": sentiments,
            "topic": [genre_names[t] for t in topics],
        }
    )
    if dates:
        frame["date"] = _trending_dates(frame["topic"].to_numpy(), rng)
    if users:
        frame["user"] = _planted_users(topics, len(genre_names), users, np.random.default_rng([seed, 1]))
    return frame


# A reviewer writes this share of their reviews in their favourite genre, and a tenth in a
# second one; the rest spread over every genre.
FAVOURITE_SHARE = 0.7
SECOND_SHARE = 0.1


def _planted_users(topics: np.ndarray, n_genres: int, n_users: int, rng: np.random.Generator) -> np.ndarray:
    """Who wrote each review: user u's favourite genre is u mod the genres, their second the next one.

    A review of genre g goes to a user who favours g with probability FAVOURITE_SHARE, to one
    whose second genre is g with probability SECOND_SHARE, else to any user.
    """
    names = np.array([f"user{u:04d}" for u in range(n_users)])
    favourite = np.arange(n_users) % n_genres
    second = (favourite + 1) % n_genres
    roll = rng.random(len(topics))
    chosen = rng.integers(0, n_users, size=len(topics))
    for genre in range(n_genres):
        for share_from, share_to, fans in ((0.0, FAVOURITE_SHARE, favourite), (FAVOURITE_SHARE, FAVOURITE_SHARE + SECOND_SHARE, second)):
            pick = (topics == genre) & (roll >= share_from) & (roll < share_to)
            candidates = np.flatnonzero(fans == genre)
            if len(candidates):
                chosen[pick] = rng.choice(candidates, size=int(pick.sum()))
    return names[chosen]


def _trending_dates(topics: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One date per review in DATE_SPAN, with TRENDS planted (ISO strings, as a CSV holds them)."""
    fraction = rng.random(len(topics))
    rising, fading = topics == TRENDS["rising"], topics == TRENDS["fading"]
    # The largest of three uniforms has density 3u^2; one minus it, 3(1-u)^2.
    fraction[rising] = rng.random((int(rising.sum()), 3)).max(axis=1)
    fraction[fading] = 1 - rng.random((int(fading.sum()), 3)).max(axis=1)
    start, end = (np.datetime64(day, "D") for day in DATE_SPAN)
    days = np.floor(fraction * ((end - start).astype(int) + 1)).astype(int)
    return np.datetime_as_string(start + days.astype("timedelta64[D]"), unit="D")


def _as_prose(words: np.ndarray, rng: np.random.Generator) -> str:
    """Sentences of 6-18 words, capitalised, with a little HTML and quoting as scraped reviews have."""
    sentences = []
    start = 0
    while start < len(words):
        end = start + int(rng.integers(6, 19))
        chunk = list(words[start:end])
        chunk[0] = chunk[0].capitalize()
        if rng.random() < 0.05:
            chunk[-1] = f'"{chunk[-1]}"'
        sentences.append(" ".join(chunk) + ("!" if rng.random() < 0.1 else "."))
        start = end
    text = " ".join(sentences)
    roll = rng.random()
    if roll < 0.3:
        cut = len(sentences) // 2
        text = " ".join(sentences[:cut]) + "<br /><br />" + " ".join(sentences[cut:])
    elif roll < 0.35:
        text = f"<i>{text}</i>"
    return text


def write_corpus(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write as RFC 4180 CSV (quotes doubled), gzip-compressed when the name ends in .gz."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, doublequote=True)
    return path
