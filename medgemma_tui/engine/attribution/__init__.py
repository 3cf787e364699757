"""Attribution methods beside attention: occlusion, RISE, integrated gradients, Grad-CAM++ (``methods``),
the probe they share (``probe``), and cascading randomisation for sanity checks (``randomise``)."""
