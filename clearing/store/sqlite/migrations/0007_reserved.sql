-- Reserved: another branch adds the real migration 7. This placeholder
-- keeps the versions without gaps until it is merged; the merge replaces
-- it (two files of version 7 stop every store from opening, loudly).
SELECT 1;
