/** The job runner on a compute node (weft worker). */
export {};
