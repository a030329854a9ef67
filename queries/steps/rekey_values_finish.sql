-- rekey_values_finish: the value rows moved by rekey_values take their key id.
-- Parameters: none
UPDATE value SET key_id = -key_id WHERE key_id < 0
