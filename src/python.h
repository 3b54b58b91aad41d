/*-------------------------------------------------------------------------
 *
 * python.h
 *	  Running Python migrations through PL/Python.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_PYTHON_H
#define TREK_PYTHON_H

extern void TrekPythonCheck(const char *file, int step, int nsteps);
extern void TrekPythonRun(const char *file, const char *text, int len,
						  int *line);

#endif							/* TREK_PYTHON_H */
