"""What the /ui pages say about an alert's fields and the forms: one place for the words, each keyed
by a value the Alert schema allows (tests/test_ui.py checks every value has its words: a value without
them, as "promotion" was, made the alert's page a 500)."""

from __future__ import annotations

from service.alerts import lifecycle

# what each verdict means to the person choosing it, for each type of alert (the API's ResolveRequest
# says the same): "the pattern did change" read oddly on an episode's end (an outside review)
VERDICT_WORDS = {
    "drift.started": {
        "confirmed": "Confirmed: the user's pattern did change",
        "false_alarm": "False alarm: it did not",
        "not_actionable": "Not actionable: it changed, but there is nothing to do",
    },
    "drift.ended": {
        "confirmed": "Confirmed: the episode did end (the user is back, or settled in a new pattern)",
        "false_alarm": "False alarm: it did not end",
        "not_actionable": "Not actionable: it ended, but there is nothing to do",
    },
}
VERDICTS = VERDICT_WORDS["drift.started"]
assert all(tuple(words) == lifecycle.VERDICTS for words in VERDICT_WORDS.values())
# what raised an episode, and what ended one, in the words of the alert's page (one for every value the
# Alert schema allows: a value without one, as "promotion" was, made the page a 500)
RAISED_BY = {
    "fast": "the drift score high for several posts in a row (fast rule)",
    "evidence": "the drift score's evidence added up over posts (evidence rule)",
    "share": "a lasting change in the share of negative emotions (share rule)",
    "promotion": "a newly served temporal model that sees this user drifting where the one before did not",
}
ENDED_BY = {
    "recovery": "the drift score and the negative share were back",
    "return_test": "the negative share was back by the re-baseline post (the return test)",
    "rebaseline": "still changed at the re-baseline post: the detector now watches for changes from this new "
                  "pattern; the user did not return to the earlier one",
    "promotion": "a newly served temporal model does not see this episode (docs/shadow.md)",
}

# how an episode ended, in a sentence a reviewer reads on its drift.started's page and its own: a new
# baseline read as good news (green, and the score falls after it) while the user stayed changed (an audit)
RESOLUTIONS = {
    "recovered": "the user returned to their earlier pattern",
    "new_baseline": "the user did not return to the pattern before this episode: the changed one lasted and is now "
                    "the baseline the detector watches from, so the drift score falls after it while the change "
                    "stays (the pattern before may itself have been an earlier change)",
    "model_changed": ENDED_BY["promotion"],
}

# what a form that was not taken did not do, in the words of the page
NOT_RECORDED = {"acknowledge": "the alert was not acknowledged", "resolve": "your verdict was not recorded"}
