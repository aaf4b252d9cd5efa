name	taxonomy_id	taxonomy_lvl	kraken_assigned_reads	added_reads	new_est_reads	fraction_total_reads
Bacteroides uniformis	820	S	3880	120	4000	0.50000
Escherichia coli	562	S	3880	120	4000	0.50000
