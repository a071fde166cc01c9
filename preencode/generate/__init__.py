"""Generation with diffusion models: conditioning, sampling and decoding (:mod:`.sample`), the
``preencode generate`` job that writes WAV files (:mod:`.run`) and its torch-free options (:mod:`.options`)."""
