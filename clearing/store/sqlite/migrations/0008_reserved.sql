-- Reserved: another branch adds the real migration 8. This placeholder
-- keeps the versions without gaps until it is merged; the merge replaces
-- it (two files of version 8 stop every store from opening, loudly).
SELECT 1;
