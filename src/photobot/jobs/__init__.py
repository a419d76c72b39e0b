"""The job pipeline: accept (in the request), then the dispatcher's steps submit → finish, and reconcile.

Every state change goes through `states.transition`, a conditional update from the expected state, so a
duplicate callback, a retried step or two racing workers can never apply the same change twice.
"""
