"""What coordinators and phones do to a study, as one use case each: run protocol versions
(upload, activate, assign) and move participants through the study (create, enroll, change
status, change time zone or attributes). Each use case updates the records it owns and then
what follows from them (the schedule is re-planned, the PAI scored); the domain packages it
calls know nothing of each other. It sits above scheduling and the decision rules and below
the HTTP edge."""
