//! Rule files: model, load, validate (and, in the daemon, reload).
