"""How work executes: the single pass over a video's windows, feeding frames to the device,
background decoding, and the resources (cores, threads, batch sizes) a run may use."""
