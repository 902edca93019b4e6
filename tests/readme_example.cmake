# Fails when README.md no longer shows apps/examples/quickstart.cpp verbatim, so that the example
# users copy is the one the build compiles.
file(READ ${README} readme)
file(READ ${EXAMPLE} example)
string(FIND "${readme}" "${example}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "README.md does not contain ${EXAMPLE} verbatim; paste the file into its code block")
endif()
