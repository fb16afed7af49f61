"""Emotion labels: the fixed class order and every public dataset's codes and spellings."""

from gimefive_tf.errors import GiMeFiveError

EMOTIONS = ("happiness", "surprise", "sadness", "anger", "disgust", "fear")
NUM_CLASSES = len(EMOTIONS)

# Classes that public datasets carry but GiMeFive does not predict; readers drop and count them.
DROPPED_CLASSES = ("neutral", "contempt")

# Folder and column spellings seen in public FER datasets, mapped to the canonical names.
SYNONYMS = {
    "happiness": "happiness", "happy": "happiness", "joy": "happiness",
    "surprise": "surprise", "surprised": "surprise",
    "sadness": "sadness", "sad": "sadness",
    "anger": "anger", "angry": "anger",
    "disgust": "disgust", "disgusted": "disgust",
    "fear": "fear", "fearful": "fear", "fearfull": "fear",
    "neutral": "neutral", "contempt": "contempt",
}

# RAF-DB basic-emotion codes (1-based) as distributed with the dataset.
RAFDB_CODES = {1: "surprise", 2: "fear", 3: "disgust", 4: "happiness",
               5: "sadness", 6: "anger", 7: "neutral"}

# FER2013 `emotion` column codes in the original fer2013.csv.
FER2013_CODES = {0: "anger", 1: "disgust", 2: "fear", 3: "happiness",
                 4: "sadness", 5: "surprise", 6: "neutral"}


def canonical_name(name):
    """Canonical emotion (or dropped-class) name for any public spelling; None when unknown."""
    return SYNONYMS.get(str(name).strip().lower())


def label_id(name):
    """Index 0..5 of an emotion given by name (any spelling) or index; None for dropped classes.

    Raises GiMeFiveError for anything that is neither an emotion nor a known dropped class.
    """
    text = str(name).strip()
    if text.isdigit() and int(text) < NUM_CLASSES:
        return int(text)
    canonical = canonical_name(text)
    if canonical in EMOTIONS:
        return EMOTIONS.index(canonical)
    if canonical in DROPPED_CLASSES:
        return None
    raise GiMeFiveError(
        f"unknown emotion {name!r}; use an index 0..{NUM_CLASSES - 1} or one of "
        f"{', '.join(EMOTIONS)} (dropped: {', '.join(DROPPED_CLASSES)})"
    )
