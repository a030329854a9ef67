-- image_content: one stored image (the file, compressed) with its format and shape.
-- Parameters:
--   :sha256   image.sha256 (of the image file)
SELECT sha256, format, dtype, shape, compression, content
FROM image
WHERE sha256 = CAST(:sha256 AS TEXT)
