"""The protocol simulator: the real scheduling, decision engine, outbox and ingestion run on
a virtual clock over a scratch database, for synthetic participants whose behaviour a
model declares, so that anyone can see what a protocol does before any patient gets it."""
