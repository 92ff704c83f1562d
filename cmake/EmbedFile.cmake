# Turns one text file into a C++ function returning its content:
#   cmake -DINPUT=file -DOUTPUT=file.cpp -DFUNCTION=ns::name -DHEADER=path.h -P EmbedFile.cmake
file(READ ${INPUT} content)
string(REGEX REPLACE "::[^:]+$" "" namespace ${FUNCTION})
string(REGEX REPLACE "^.*::" "" name ${FUNCTION})
file(WRITE ${OUTPUT} "// Generated from ${INPUT} by cmake/EmbedFile.cmake.\n#include \"${HEADER}\"\n\n"
  "namespace ${namespace} {\nstd::string_view ${name}() {\n"
  "  static constexpr char text[] = R\"warren_embed(${content})warren_embed\";\n"
  "  return {text, sizeof(text) - 1};\n}\n}  // namespace ${namespace}\n")
