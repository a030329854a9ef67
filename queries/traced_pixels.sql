-- traced_pixels: every pixel some run traces, with how many runs (any bundle).
-- Parameters: none
SELECT p.slow AS slow, p.fast AS fast, count(*) AS runs
FROM run r JOIN pixel p ON p.id = r.pixel_id
GROUP BY p.slow, p.fast
ORDER BY p.slow, p.fast
