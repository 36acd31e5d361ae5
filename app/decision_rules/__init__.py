"""Decision rules: tailoring variables, CEL rules, randomization and the decision log."""
