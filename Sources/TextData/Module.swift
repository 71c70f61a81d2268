// TextData module.
