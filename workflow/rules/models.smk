# models module: rules are added by its issue.
