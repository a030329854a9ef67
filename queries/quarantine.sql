-- quarantine: TRACE lines kept aside, with file, line number and reason; items of a
-- JSON trace with line 0 and their JSON pointer (pointer; NULL for lines).
-- Parameters: :path  substring of the file path (NULL = all; case-sensitive and
-- literal: %, _ and \ match themselves)
SELECT sf.path    AS path,
       q.line_no  AS line,
       q.json_pointer AS pointer,
       q.reason   AS reason,
       q.text     AS text
FROM quarantine q
JOIN source_file sf ON sf.id = q.source_file_id
WHERE CAST(:path AS TEXT) IS NULL
   OR sf.path LIKE '%' || REPLACE(REPLACE(REPLACE(CAST(:path AS TEXT), '\', '\\'), '%', '\%'), '_', '\_') || '%' ESCAPE '\'
ORDER BY sf.path, q.line_no, q.id
