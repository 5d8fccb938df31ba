"""The mask stage: an XSeg-class face segmentation trained from include/exclude polygons or, with --generic, from
the landmark hull and synthetic occluders; applied to facesets as ``FaceMeta.xseg_mask``."""
