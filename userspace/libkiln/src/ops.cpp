// ops placeholder
